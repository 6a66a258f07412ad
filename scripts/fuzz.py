#!/usr/bin/env python3
"""Long fuzz runs of one parser, by hand: coverage-guided with atheris (libFuzzer) when it is
installed, else hypothesis (not coverage-guided), saying so.

    pip install atheris                                  # optional: coverage guidance
    python scripts/fuzz.py --list                        # the targets
    python scripts/fuzz.py --target csr --seconds 600    # ten minutes
    python scripts/fuzz.py --target mqtt                 # until stopped (Ctrl-C) or a finding
    python scripts/fuzz.py --target est --seconds 60 -jobs=2   # -flags go to libFuzzer

The targets and their checks are tests/fuzz/targets.py (only the parser's own typed error
may escape); each starts from its corpus (tests/fuzz/corpus/<target>/, the MQTT one
tests/gateway/corpus/, read only) and atheris writes what it finds to a working directory
(default ./fuzz-work/<target>, or --work); copy small interesting inputs into the corpus,
where the test suite replays them (tests/fuzz/test_fuzz_targets.py). A finding is written
as crash-<hash> (libFuzzer) or crash-<sha256>.bin (hypothesis) and the exit status is 1.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the targets live in tests/


def _arguments() -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", help="what to fuzz (--list shows them)")
    parser.add_argument("--seconds", type=int, default=0, help="0: until stopped")
    parser.add_argument("--work", type=Path, help="where findings go")
    parser.add_argument("--list", action="store_true", help="list the targets")
    known, rest = parser.parse_known_args()
    unknown = [a for a in rest if not a.startswith("-")]
    if unknown:
        parser.error(f"unexpected arguments {unknown}")
    return known, rest


def _with_atheris(name: str, seconds: int, work: Path, flags: list[str]) -> None:
    import atheris  # type: ignore[import-untyped,import-not-found,unused-ignore]

    with atheris.instrument_imports(include=["devicetrust", "tests"]):
        from tests.fuzz.targets import TARGETS
    target = TARGETS[name]
    defaults = {"-max_total_time": seconds, "-max_len": target.max_len}
    for flag, value in defaults.items():
        if not any(f.startswith(f"{flag}=") for f in flags):  # libFuzzer: the last one wins
            flags = [*flags, f"{flag}={value}"]
    atheris.Setup([sys.argv[0], *flags, str(work), str(target.corpus)], target.run)
    atheris.Fuzz()


def _with_hypothesis(name: str, seconds: int, work: Path) -> int:
    from tests.fuzz.engine import run_for
    from tests.fuzz.targets import TARGETS

    target = TARGETS[name]
    executions = 0
    failing: list[bytes] = []

    def counted(data: bytes) -> None:
        nonlocal executions
        executions += 1
        try:
            target.run(data)
        except BaseException:
            failing.append(data)
            raise

    start = time.monotonic()
    try:
        run_for(type(target)(target.name, counted, target.corpus, target.max_len), seconds)
    except KeyboardInterrupt:
        pass
    except Exception as exc:  # a finding: report the shrunk input
        data = failing[-1]
        crash = work / f"crash-{hashlib.sha256(data).hexdigest()[:16]}.bin"
        crash.write_bytes(data)
        print(f"{name}: FINDING {type(exc).__name__}: {exc}; input in {crash}")
        return 1
    elapsed = time.monotonic() - start
    print(f"{name}: {executions} executions in {elapsed:.0f} s, 0 crashes (hypothesis)")
    return 0


def main() -> int:
    args, flags = _arguments()
    from tests.fuzz.targets import TARGETS

    if args.list or args.target is None:
        print("\n".join(TARGETS))
        return 0 if args.list else 2
    if args.target not in TARGETS:
        print(f"unknown target {args.target!r}; one of: {', '.join(TARGETS)}", file=sys.stderr)
        return 2
    work = args.work or Path("fuzz-work") / args.target
    work.mkdir(parents=True, exist_ok=True)
    try:
        import atheris  # type: ignore[import-untyped,import-not-found,unused-ignore]  # noqa: F401
    except ImportError:
        print(
            "atheris is not installed (`pip install atheris`; it builds against libFuzzer and "
            "needs clang): falling back to hypothesis, which is NOT coverage-guided",
            file=sys.stderr,
        )
        seconds = args.seconds
        for flag in flags:  # the one libFuzzer flag that means something here
            name, _, value = flag.partition("=")
            if name == "-max_total_time" and value.isdigit() and not seconds:
                seconds = int(value)
            else:
                print(f"libFuzzer flag ignored: {flag}", file=sys.stderr)
        return _with_hypothesis(args.target, seconds, work)
    _with_atheris(args.target, args.seconds, work, flags)
    return 0


if __name__ == "__main__":
    sys.exit(main())
