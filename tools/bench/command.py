"""`bwc bench run SUITE… --hal sim|pi --out DIR [...]`: the parser and handler (docs/bench.md)."""
from __future__ import annotations


class BenchUsageError(Exception):
    pass


def add_parser(sub) -> None:
    from tools.bench.registry import SUITES
    s = sub.add_parser("bench", help="the bench harness: run suites, judge thresholds, write a report")
    bench = s.add_subparsers(dest="bench_command", required=True, metavar="ACTION")
    t = bench.add_parser("run", help="run suites; write DIR/report.json and DIR/report.html "
                         "(exit 0 all thresholds hold, 1 one failed, 2 usage, 3 a figure was skipped)")
    t.add_argument("suites", nargs="+", metavar="SUITE", help=f"one or more of: {', '.join(SUITES)}")
    t.add_argument("--hal", required=True, choices=("sim", "pi"))
    t.add_argument("--out", required=True, metavar="DIR")
    t.add_argument("--thresholds", metavar="FILE", help="TOML tables overriding defaults.toml per figure")
    t.add_argument("--reduced", action="store_true", help="the short form: fewer repeats, less data")
    t.add_argument("--repeats", type=int, metavar="N", help="runs per figure (default 5; reduced 2)")
    t.add_argument("--seed", type=int, default=0, metavar="N", help="random phases and choices (default 0)")
    t.add_argument("--pi-config", metavar="PI_TOML",
                   help="--hal pi: the prototype's pi.toml (default: the wiring in docs/pi.md)")


def run(args) -> int:
    from tools.bench.harness import HarnessError, run as run_harness
    try:
        return run_harness(args.suites, args.hal, args.out, args.thresholds, args.reduced, args.repeats, args.seed,
                           pi_config=args.pi_config, emit=lambda line: print(line, flush=True))
    except HarnessError as exc:
        raise BenchUsageError(str(exc)) from None
