"""The command lines a benchmark result file was made by (shared by the bench scripts)."""
import sys


def record_invocation(out: dict, argv, started: str, seconds: float, script: str) -> None:
    """Append this command line to ``out["invocations"]`` (kept when the part is run in pieces)."""
    command = f"python bench/{script} " + " ".join(argv if argv is not None else sys.argv[1:])
    out.setdefault("invocations", []).append({"command": command.strip(), "started": started,
                                              "seconds": round(seconds, 1)})
