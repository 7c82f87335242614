"""One package per CronJob. Each one's job.py is its entry (connect, observe, plan, apply, report on one
screen); the rest of the package is what only that job uses. Jobs import lib/, never each other."""
