"""Test-only handlers that fail in ways a handler's own try/except does not cover (loaded with
--handler TYPE=hostile_handlers:FN, PYTHONPATH=test/python-sdk). The worker must answer each with an error
and keep serving.

deep_result:       returns a list nested 5,000 deep, so encoding the reply recurses past Python's limit.
unprintable_error: raises an exception whose str() and repr() raise too.
base_exception:    raises a BaseException that is not an Exception (the thread-pool path always caught it; the
                   inline path did not, and the worker exited).
"""


def deep_result(data, ctx):
    value = []
    for _ in range(5000):
        value = [value]
    return {"deep": value}


class _Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("str() of this exception fails")

    def __repr__(self):
        raise RuntimeError("repr() of this exception fails")


def unprintable_error(data, ctx):
    raise _Unprintable()


class _NotAnException(BaseException):
    pass


def base_exception(data, ctx):
    raise _NotAnException("raised from a handler")
