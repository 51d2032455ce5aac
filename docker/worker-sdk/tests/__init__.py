"""The SDK's unit tests. A test that hangs (a socket or thread that never lets go) dumps every thread's traceback
and ends the run after 170 s, so the hang is reported with where it is instead of by the runner's kill."""
import faulthandler
import sys

faulthandler.dump_traceback_later(170, exit=True, file=sys.stderr)
