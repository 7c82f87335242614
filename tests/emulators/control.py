"""The control API under `$CWJ_EMULATOR_CONTROL_URL/_emulator/`: reset, faults and latency, the emulated
clock, request counts and the ordered request log. Loopback only, no auth: it is test infrastructure."""

from __future__ import annotations

import dataclasses

from tests.emulators.core import Emulator, Fault, HttpError, Request, Response, route


class ControlEmulator(Emulator):
    service = "control"
    record_requests = False

    def _body(self, req: Request) -> dict[str, object]:
        try:
            body = req.json() or {}
        except ValueError:
            raise HttpError(400, {"error": {"code": "BadRequest", "message": "body must be JSON"}}) from None
        if not isinstance(body, dict):
            raise HttpError(400, {"error": {"code": "BadRequest", "message": "body must be a JSON object"}})
        return body

    @route("GET", r"/_emulator/health", "health")
    def health(self, req: Request) -> Response:
        return Response(200, {"services": {e.service: e.url for e in self.platform.emulators}})

    @route("POST", r"/_emulator/reset", "reset")
    def reset_all(self, req: Request) -> Response:
        self.platform.reset()
        return Response(200, {"reset": True, "now": self.platform.clock.now().isoformat()})

    @route("GET", r"/_emulator/requests", "requests")
    def requests(self, req: Request) -> Response:
        entries = self.platform.log.entries(req.q("service"), req.q("op"))
        return Response(200, {"counts": self.platform.log.counts(), "log": entries})

    @route("DELETE", r"/_emulator/requests", "requests.clear")
    def clear_requests(self, req: Request) -> Response:
        self.platform.log.clear()
        return Response(204)

    @route("POST", r"/_emulator/faults", "faults.add")
    def add_fault(self, req: Request) -> Response:
        body = self._body(req)
        known = {f.name for f in dataclasses.fields(Fault)} - {"before"}  # a callable: in-process faults only
        unknown = set(body) - known
        if unknown or "service" not in body:
            raise HttpError(
                400,
                {
                    "error": {
                        "code": "BadRequest",
                        "message": f"fields: service (required), {sorted(known)}; unknown {sorted(unknown)}",
                    }
                },
            )
        services = {e.service for e in self.platform.emulators}
        if body["service"] not in services:
            raise HttpError(
                400,
                {"error": {"code": "BadRequest", "message": f"service must be one of {sorted(services)}"}},
            )
        skip, raw, drop = body.get("skip", 0), body.get("body"), body.get("drop")
        if not isinstance(skip, int) or isinstance(skip, bool) or skip < 0 or not isinstance(raw, str | None):
            raise HttpError(
                400, {"error": {"code": "BadRequest", "message": "skip must be a whole number >= 0, body a string"}}
            )
        if drop not in (None, "request", "response"):
            raise HttpError(400, {"error": {"code": "BadRequest", "message": 'drop must be "request" or "response"'}})
        if "retry_after" in body and body["retry_after"] is not None:
            body["retry_after"] = str(body["retry_after"])
        fault = Fault(**body)  # type: ignore[arg-type]
        self.platform.faults.add(fault)
        return Response(201, {k: v for k, v in dataclasses.asdict(fault).items() if k != "before"})

    @route("DELETE", r"/_emulator/faults", "faults.clear")
    def clear_faults(self, req: Request) -> Response:
        self.platform.faults.clear()
        return Response(204)

    @route("POST", r"/_emulator/config", "config")
    def config(self, req: Request) -> Response:
        body = self._body(req)
        try:
            emulator = self.platform.by_service(str(body.get("service")))
            settings = body.get("settings") or {}
            if not isinstance(settings, dict):
                raise ValueError("settings must be a JSON object")
            with emulator.lock:
                return Response(200, {"service": emulator.service, "settings": emulator.configure(settings)})
        except (KeyError, ValueError) as exc:
            raise HttpError(400, {"error": {"code": "BadRequest", "message": str(exc)}}) from None

    @route("GET", r"/_emulator/clock", "clock")
    def clock(self, req: Request) -> Response:
        return Response(200, {"now": self.platform.clock.now().isoformat()})

    @route("POST", r"/_emulator/clock/advance", "clock.advance")
    def advance(self, req: Request) -> Response:
        seconds = self._body(req).get("seconds")
        if not isinstance(seconds, int | float) or seconds < 0:
            raise HttpError(400, {"error": {"code": "BadRequest", "message": "seconds must be a number >= 0"}})
        return Response(200, {"now": self.platform.clock.advance(float(seconds)).isoformat()})
