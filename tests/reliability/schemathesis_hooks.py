"""Checks Schemathesis runs beside its own (``SCHEMATHESIS_HOOKS=tests.reliability.schemathesis_hooks``)."""

import schemathesis

TRACE_MARKERS = (b"Traceback", b'File "', b"site-packages", b'.py", line')


@schemathesis.check
def no_stack_trace(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """No response body, of any status, carries a Python traceback or a source path."""
    if any(marker in (response.content or b"") for marker in TRACE_MARKERS):
        raise AssertionError(f"stack trace in the {response.status_code} response body")


@schemathesis.check
def errors_are_json(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """Every 4xx/5xx is the service's one error shape: ``{"error": code, "detail": text}``."""
    if response.status_code >= 400:
        body = response.json()
        if not (isinstance(body, dict) and set(body) == {"error", "detail"} and body["error"] and body["detail"]):
            raise AssertionError(f"{response.status_code} body is not {{error, detail}}: {body!r:.200}")
