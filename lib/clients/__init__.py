"""One small client per outside system: what the jobs call over the network, and nothing about any job."""
