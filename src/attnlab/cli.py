"""The ``attnlab`` command line: ``report``, ``exp``, ``train``, ``resume``, ``sample``, ``bench``, ``viz``,
``practice``, ``exercises`` and ``check``.

Bad input (an unknown name, a bad option value, an out-of-range config) prints one line,
``attnlab: error: <message>``, to stderr and exits with status 2; an experiment that fails inside a report
exits with status 1 after the report is written; Ctrl-C exits with 130.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
import typing
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

from attnlab import __version__

PROG = "attnlab"
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Bad command-line input; ``main`` prints its message on one line and exits with status 2."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are raised (one line from ``main``), not printed with the usage."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 success, 1 an experiment failed, 2 bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _dispatch(argv)
    except UsageError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    except SystemExit as exc:  # --help and --version exit through argparse
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_USAGE)


def _fail(message: str, status: int) -> int:
    print(f"{PROG}: error: {' '.join(message.split())}", file=sys.stderr)
    return status


@contextlib.contextmanager
def _user_input() -> Iterator[None]:
    """Validation of what the user typed: its ValueError/TypeError becomes a one-line usage error.

    Only the checking of input is wrapped, never the running of an experiment or a benchmark: an error
    there is a bug and keeps its traceback.
    """
    try:
        yield
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from exc


def _dispatch(argv: list[str]) -> int:
    parser = _build_parser()
    args, extras = parser.parse_known_args(argv)
    if args.command is None:
        raise UsageError(
            "a command is required: report, exp, train, resume, sample, bench, viz, practice, exercises or check "
            "(see attnlab --help)"
        )
    if args.command == "exp":
        return _cmd_exp(args, argv[argv.index("exp") + 1 :])
    if args.command == "train":
        return _cmd_train(args, argv[argv.index("train") + 1 :])
    if extras:
        raise UsageError(f"unrecognized arguments: {' '.join(extras)}")
    if args.command == "report":
        return _cmd_report(args)
    if args.command == "resume":
        return _cmd_resume(args)
    if args.command == "sample":
        return _cmd_sample(args)
    if args.command == "viz":
        return _cmd_viz(args)
    if args.command == "practice":
        return _cmd_practice(args)
    if args.command in ("exercises", "check"):
        return _cmd_exercises(args) if args.command == "exercises" else _cmd_check(args)
    return _cmd_bench(args)


def _build_parser() -> _Parser:
    parser = _Parser(
        prog=PROG,
        description="Sequence models and attention from first principles; every claim measured.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    report = sub.add_parser("report", help="run the experiments and write runs/report/index.html")
    report.add_argument("--profile", choices=("quick", "full"), default="quick", help="default: quick")
    report.add_argument("--only", nargs="+", metavar="NAME", help="run only these experiments")
    report.add_argument("--out", type=Path, default=Path("runs/report"), help="default: runs/report")
    report.add_argument(
        "--device", default="cpu", metavar="auto|cpu|cuda", help="where every experiment runs (default: cpu)"
    )
    report.add_argument(
        "--replot",
        action="store_true",
        help="redraw figures and index.html from the results already in --out; runs nothing",
    )

    # Stage one of `exp`: only NAME (and --list). The experiment's own options are parsed in stage two.
    exp = sub.add_parser("exp", help="run one experiment", add_help=False, allow_abbrev=False)
    exp.add_argument("name", nargs="?", metavar="NAME")
    exp.add_argument("--list", action="store_true")
    exp.add_argument("-h", "--help", action="store_true")
    exp.add_argument("--profile")
    exp.add_argument("--out")

    # Stage one of `train`: only MODEL; the run config's options are parsed in stage two.
    train = sub.add_parser(
        "train", help="train a model (gpt or seq2seq) from scratch", add_help=False, allow_abbrev=False
    )
    train.add_argument("model", nargs="?", metavar="MODEL")
    train.add_argument("-h", "--help", action="store_true")

    resume = sub.add_parser("resume", help="continue a killed or stopped training run from its last checkpoint")
    resume.add_argument("run_dir", type=Path, metavar="RUN_DIR")

    sample = sub.add_parser("sample", help="generate text from a GPT checkpoint, or translate with a seq2seq one")
    sample.add_argument("ckpt", metavar="CKPT", help="a ckpt.safetensors file or its run folder")
    sample.add_argument("--prompt", default="\n", help="default: a newline; seq2seq: the sentence to translate")
    sample.add_argument("--beam", type=int, metavar="N", help="seq2seq only: beam search of width N (default: greedy)")
    sample.add_argument("--max-new-tokens", type=int, default=500)
    sample.add_argument("--temperature", type=float, default=0.8)
    sample.add_argument("--top-k", type=int, default=200)
    sample.add_argument("--seed", type=int, default=1337)
    sample.add_argument("--no-cache", action="store_true", help="recompute every position (no KV cache)")

    bench = sub.add_parser("bench", help="benchmarks as ratio tables against the PyTorch built-ins")
    bench.add_argument("names", nargs="*", metavar="NAME", help="default: all")
    bench.add_argument("--quick", action="store_true", help="small sizes, a few seconds each")
    bench.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N; default: auto")
    bench.add_argument("--out", type=Path, default=Path("runs/bench"), help="default: runs/bench")

    viz = sub.add_parser("viz", help="write a standalone attention viewer (one HTML file) for a sentence")
    viz.add_argument("sentence", metavar="SENTENCE")
    viz.add_argument(
        "--model",
        default="minilm",
        metavar="minilm|CKPT",
        help="minilm (all-MiniLM-L6-v2, the default) or a GPT or seq2seq checkpoint (a file or its run folder)",
    )
    viz.add_argument("--out", type=Path, default=Path("attention.html"), help="default: attention.html")

    practice = sub.add_parser(
        "practice", help="write the lesson's practice page: flashcards and the pronoun exercise (one HTML file)"
    )
    practice.add_argument("--out", type=Path, default=Path("practice.html"), help="default: practice.html")
    practice.add_argument(
        "--results",
        type=Path,
        metavar="PATH",
        help="an attnlab report's results.json (or its folder) for the cards' measured numbers "
        "(default: runs/report/results.json when it exists)",
    )
    _add_exercise_parsers(sub)
    return parser


# ------------------------------------------------------------------------------------------------- report


def _cmd_report(args: argparse.Namespace) -> int:
    from attnlab.report import ExperimentsFailed, build_report, replot

    if args.replot and args.only:
        raise UsageError("--replot redraws the report in --out as it is; it takes no --only")
    try:
        # build_report checks --only, --profile and --device before it runs anything, and records (does not
        # raise) the errors of the experiments themselves
        with _user_input():
            if args.replot:
                index = replot(args.out)
            else:
                index = build_report(args.out, args.profile, args.only, device=args.device)
    except ExperimentsFailed as exc:
        _print_summary(exc.index.parent / "results.json", exc.failed)
        return _fail(str(exc), EXIT_FAILED)
    _print_summary(index.parent / "results.json", {})
    print(f"report: {index}")
    return 0


def _print_summary(results_path: Path, failed: dict[str, str]) -> None:
    from attnlab.fileio import read_json

    results = read_json(results_path)
    width = max((len(n) for n in results), default=0)
    for name, r in results.items():
        verdict = "error" if name in failed else _verdict(r["held"])
        print(f"{name:<{width}}  {verdict:<14}  {r['seconds']:8.1f} s")


def _verdict(held: bool | None) -> str:
    return {True: "held", False: "did not hold", None: "not measurable"}[held]


# ---------------------------------------------------------------------------------------------------- exp


def _cmd_exp(args: argparse.Namespace, exp_argv: list[str]) -> int:
    from attnlab import experiments

    if args.list:
        for name in experiments.names():
            try:
                claim = experiments.get(name).claim
            except ImportError as exc:
                claim = f"(not available: {exc})"
            print(f"{name}\n    {claim}")
        return 0
    if args.name is None:
        if args.help:
            print(f"usage: {PROG} exp NAME [--profile P] [--out DIR] [--FIELD VALUE ...]")
            print(f"       {PROG} exp --list")
            return 0
        raise UsageError(f"exp: an experiment NAME is required (one of {', '.join(experiments.names())})")
    with _user_input():
        spec = experiments.get(args.name)
        parser, fields = _experiment_parser(spec)
        ns = parser.parse_args(exp_argv)
        cfg = spec.config_cls.for_profile(ns.profile, **_field_values(ns, spec.config_cls, fields))
    out = Path(ns.out) if ns.out else Path("runs/exp") / spec.name
    return _run_experiment(spec, cfg, out)


def _experiment_parser(spec: Any) -> tuple[_Parser, dict[str, str]]:
    """Stage two of ``exp``: a parser with ``--profile``, ``--out`` and one option per config field.

    Returns the parser and field name -> argparse dest. Only the options given appear in the namespace
    (``default=SUPPRESS``), so that only they override the profile.
    """
    cls = spec.config_cls
    profiles = list(cls.PROFILES)
    parser = _Parser(
        prog=f"{PROG} exp {spec.name}",
        usage=f"{PROG} exp {spec.name} [-h] [--profile {{{','.join(profiles)}}}] [--out DIR] [--FIELD VALUE ...]",
        description=spec.claim,
        allow_abbrev=False,
        epilog=f"Profiles: {', '.join(profiles)}. Options given override the profile's values.",
    )
    parser.add_argument("name", help=argparse.SUPPRESS)  # seen in stage one already
    default = "quick" if "quick" in profiles else profiles[0]
    parser.add_argument("--profile", choices=profiles, default=default, help=f"default: {default}")
    parser.add_argument("--out", metavar="DIR", help=f"default: runs/exp/{spec.name}")
    return parser, _add_field_options(parser, cls, cls.PROFILES)


def _add_field_options(parser: _Parser, cls: type, profiles: dict[str, dict[str, Any]] | None = None) -> dict[str, str]:
    """One ``--field-name VALUE`` option per leaf field of a (nested) config dataclass, nested ones dotted
    (``--train.max-iters``), except the ``DERIVED`` ones the config sets itself; only given options land in the
    namespace. An old flat flag whose field moved into a nested config (``--lr``, now ``--train.lr``) or was
    renamed (``cls.RENAMED``) fails with one line naming the new one. Returns dotted field name -> dest."""
    from attnlab.configs import leaves, option

    derived = set(getattr(cls, "DERIVED", ()))
    group = parser.add_argument_group(f"{cls.__name__} fields")
    fields, taken = {}, set()
    for f in leaves(cls):
        if f.name in derived:
            continue
        dest = f"field_{f.name}"
        fields[f.name] = dest
        taken.add(option(f.name))
        per_profile = [f"{p}: {_show(v[f.name])}" for p, v in (profiles or {}).items() if f.name in v]
        group.add_argument(
            option(f.name),
            dest=dest,
            metavar=_metavar(f.annotation),
            default=argparse.SUPPRESS,
            help="; ".join([f"default {_show(f.default)}", *per_profile]),
        )
    renamed = {  # only those whose new field is here (an experiment that does not train has no train.max_iters)
        option(old): option(new)
        for old, new in getattr(cls, "RENAMED", {}).items()
        if any(name == new or name.startswith(f"{new}.") for name in fields)
    }
    for name in fields:  # train.lr was --lr before train nested
        renamed.setdefault(option(name.rsplit(".", 1)[-1]), option(name))
    for old, new in renamed.items():
        if old not in taken:
            parser.add_argument(old, nargs="?", action=_Renamed, new=new, help=argparse.SUPPRESS)
    return fields


class _Renamed(argparse.Action):
    """An option that has moved: using it is a usage error that names its new spelling."""

    def __init__(self, *args: Any, new: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.new = new

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: str | None = None) -> None:
        raise UsageError(f"{option_string} is now {self.new}")


def _field_values(args: argparse.Namespace, cls: type, fields: dict[str, str]) -> dict[str, Any]:
    """The given options parsed to their fields' types, by dotted field name."""
    from attnlab.configs import leaves, parse_value

    types = {f.name: f.annotation for f in leaves(cls)}
    return {
        name: parse_value(name, types[name], getattr(args, dest))
        for name, dest in fields.items()
        if hasattr(args, dest)
    }


def _metavar(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin in (tuple, list):
        item = typing.get_args(annotation)[0]
        return f"{getattr(item, '__name__', 'X').upper()},..."
    if annotation is bool:
        return "true|false"
    return getattr(annotation, "__name__", "VALUE").upper()


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (tuple, list)):
        return ",".join(_show(v) for v in value)
    return str(value)


def _run_experiment(spec: Any, cfg: Any, out: Path) -> int:
    from attnlab.experiments.base import execute

    result = execute(spec, cfg, out)
    print(f"{spec.name}: {_verdict(result['held'])} ({result['seconds']:.1f} s)")
    metrics = result.get("metrics") or {}
    width = max((len(k) for k in metrics), default=0)
    for key, value in metrics.items():
        print(f"  {key:<{width}}  {value:.4g}" if isinstance(value, float) else f"  {key:<{width}}  {value}")
    print(f"results: {out / 'results.json'}")
    for fig in sorted(out.glob("*.svg")):
        print(f"figure:  {fig}")
    return 0


# ------------------------------------------------------------------------------------ train, resume, sample

_USER_ERRORS = (ValueError, TypeError, FileNotFoundError)


def _cmd_train(args: argparse.Namespace, train_argv: list[str]) -> int:
    from attnlab import configs

    if args.model not in ("gpt", "seq2seq"):
        if args.model is None and args.help:
            print(f"usage: {PROG} train gpt|seq2seq [--FIELD VALUE ...]   (see: {PROG} train MODEL --help)")
            return 0
        raise UsageError(f"train: expected a model among gpt, seq2seq; got {args.model!r}")
    if args.model == "gpt":
        from attnlab.train.gpt import GPTRunConfig as config_cls
        from attnlab.train.gpt import prepare_gpt as prepare

        description = "Train a char-level GPT (nanoGPT's CPU recipe by default)."
    else:
        from attnlab.train.seq2seq import Seq2SeqRunConfig as config_cls
        from attnlab.train.seq2seq import prepare_seq2seq as prepare

        description = (
            "Train an RNN encoder-decoder (bidirectional GRU, Bahdanau attention by default) on a synthetic task "
            "(copy, reverse, dates), German-English sentences (--task de-en) or a TSV of pairs (--pairs FILE); "
            "then evaluate it on the test split (exact match; BLEU and chrF for sentences)."
        )
    parser = _Parser(prog=f"{PROG} train {args.model}", description=description)
    parser.add_argument("model", help=argparse.SUPPRESS)
    fields = _add_field_options(parser, config_cls)
    try:
        run = configs.replace(config_cls(), **_field_values(parser.parse_args(train_argv), config_cls, fields))
        trainer = prepare(run)
    except _USER_ERRORS as exc:
        raise UsageError(str(exc)) from exc
    return _report_training(trainer.fit(), run.out)


def _run_kind(ckpt: str | Path) -> str:
    from attnlab.train import run_kind

    return run_kind(ckpt)[0]


def _cmd_resume(args: argparse.Namespace) -> int:
    try:
        if _run_kind(args.run_dir / "ckpt.safetensors") == "gpt":
            from attnlab.train.gpt import prepare_resume
        else:
            from attnlab.train.seq2seq import prepare_seq2seq_resume as prepare_resume
        trainer = prepare_resume(str(args.run_dir))
    except _USER_ERRORS as exc:
        raise UsageError(str(exc)) from exc
    return _report_training(trainer.fit(), str(args.run_dir))


def _report_training(result: dict[str, Any], out: str) -> int:
    import os

    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun, rank 0 speaks for the run
        return 0
    last = result["history"][-1] if result["history"] else {}
    val = f", val loss {last['val']:.4f}" if "val" in last else ""
    loss = result["last_train_loss"]
    loss_text = "n/a" if loss is None else f"{loss:.4f}"
    print(f"iter {result['iter']}: train loss {loss_text}{val} ({result['seconds']:.1f} s)")
    test = result.get("test") or {}  # seq2seq: the test split, greedy and with beam search
    for search in ("greedy", "beam"):
        if search in test:
            name = search if search == "greedy" else f"beam {test['beam_size']}"
            scores = ", ".join(f"{k} {v:.4f}" if k == "accuracy" else f"{k} {v:.2f}" for k, v in test[search].items())
            print(f"test ({test['n']} pairs, {name}): {scores}")
    print(f"checkpoint: {Path(out) / 'ckpt.safetensors'}")
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    from attnlab.train.gpt import sample_gpt

    try:
        if _run_kind(args.ckpt) == "seq2seq":
            text = _translate(args.ckpt, args.prompt, 1 if args.beam is None else args.beam)
        elif args.beam is not None:
            raise ValueError(f"--beam: beam search is for seq2seq checkpoints; {args.ckpt} is a GPT checkpoint")
        else:
            text = sample_gpt(
                args.ckpt,
                args.prompt,
                args.max_new_tokens,
                args.temperature,
                None if args.top_k <= 0 else args.top_k,
                args.seed,
                use_cache=not args.no_cache,
            )
    except _USER_ERRORS as exc:
        raise UsageError(str(exc)) from exc
    print(text)
    return 0


def _translate(ckpt: str, prompt: str, beam: int) -> str:
    """The translation of ``prompt`` by a seq2seq checkpoint (greedy for ``beam`` 1, else beam search)."""
    from attnlab.train.seq2seq import load_seq2seq, translate

    if beam < 1:
        raise ValueError(f"--beam: expected an integer >= 1, got {beam}")
    model, src_vocab, tgt_vocab, run = load_seq2seq(ckpt)
    if not prompt.strip():
        raise ValueError('prompt: expected a sentence to translate (--prompt "..."), got an empty one')
    return translate(model, src_vocab, tgt_vocab, [prompt], beam, chars=run.chars)[0].text


# -------------------------------------------------------------------------------------------------- bench


def _cmd_bench(args: argparse.Namespace) -> int:
    from attnlab.fileio import write_json

    bench = _bench_registry()
    available = bench.names()
    unknown = [n for n in args.names if n not in available]
    if unknown:
        raise UsageError(f"bench: expected names among {', '.join(available)}; got {', '.join(unknown)}")
    from attnlab._checks import resolve_device

    with _user_input():
        device = resolve_device(args.device)
    cpu_only = [n for n in args.names if n in bench.CPU_ONLY]
    if cpu_only and device != "cpu":
        raise UsageError(f"--device: {', '.join(cpu_only)} measures the CPU only; run it with --device cpu")
    gpu_only = [n for n in args.names if n in getattr(bench, "GPU_ONLY", ())]
    if gpu_only and not device.startswith("cuda"):
        raise UsageError(f"--device: {', '.join(gpu_only)} times GPU kernels; run it with --device cuda (needs CUDA)")
    defaults = getattr(bench, "default_names", bench.names)()
    selected = args.names or [n for n in defaults if device == "cpu" or n not in bench.CPU_ONLY]
    args.out.mkdir(parents=True, exist_ok=True)
    for name in selected:
        try:
            result = bench.run(name, quick=args.quick, device=device)
        except ImportError as exc:  # a reference (e.g. transformers for `encoder`) is not installed
            if args.names:
                raise UsageError(str(exc)) from exc
            print(f"skipped {name}: {exc}\n", file=sys.stderr)
            continue
        print(bench.to_markdown(name, result))
        print()
        write_json(args.out / f"{name}.json", result)
    print(f"results: {args.out}")
    return 0


def _bench_registry() -> Any:
    """The benchmark registry ``attnlab.bench``: ``names()``, ``run(name, quick=)``, ``to_markdown``."""
    module = importlib.import_module("attnlab.bench")
    if not all(hasattr(module, attr) for attr in ("names", "run", "to_markdown")):
        raise UsageError("bench: the benchmark registry attnlab.bench is not available in this install")
    return module


# ---------------------------------------------------------------------------------------------------- viz


def _cmd_viz(args: argparse.Namespace) -> int:
    from attnlab.report.viewer import AttentionView
    from attnlab.report.viz import sentence_payloads

    try:
        payloads = sentence_payloads(args.sentence, args.model)
    except _USER_ERRORS as exc:  # an empty sentence, a missing or foreign checkpoint, untokenizable text
        raise UsageError(str(exc)) from exc
    try:
        path = AttentionView(payloads).save(args.out)
    except ValueError as exc:  # --out is a folder, or a file stands where its folder should be
        raise UsageError(str(exc)) from exc
    print(f"viewer: {path} ({len(payloads[0]['query_tokens'])} tokens)")
    return 0


# ----------------------------------------------------------------------------------------------- practice


def _cmd_practice(args: argparse.Namespace) -> int:
    from attnlab.models import Encoder
    from attnlab.report.practice import check_out, find_results, load_results, write_practice

    try:  # a bad --out or --results, or the pretrained encoder not installed
        out = check_out(args.out)
        results_path = find_results(args.results)
        results = None if results_path is None else load_results(results_path)
        encoder = Encoder.from_pretrained()
    except _USER_ERRORS as exc:
        raise UsageError(str(exc)) from exc
    path = write_practice(out, results, results_path, encoder=encoder)
    measured = f"measured numbers from {results_path}" if results_path else "no report results (see the page)"
    print(f"practice: {path} ({measured})")
    return 0


# ---------------------------------------------------------------------------------------- exercises, check

_EXERCISES_DIR = Path("attnlab-exercises")


def _add_exercise_parsers(sub: Any) -> None:
    """``attnlab exercises [start NAME | solution NAME]`` and ``attnlab check NAME [FILE]``."""
    exercises = sub.add_parser(
        "exercises",
        help="the exercises with your status; `start NAME` writes a skeleton, `solution NAME` shows one",
        description="Without an ACTION: the exercises by section, with your status (from the files in --dir).",
    )
    exercises.add_argument("--dir", type=Path, default=_EXERCISES_DIR, help=f"your folder (default: {_EXERCISES_DIR})")
    actions = exercises.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    start = actions.add_parser("start", help="write NAME's skeleton: task, equation, shapes, signature")
    start.add_argument("name", metavar="NAME")
    start.add_argument("--dir", type=Path, default=argparse.SUPPRESS, help=f"default: {_EXERCISES_DIR}")
    start.add_argument("--force", action="store_true", help="overwrite an existing file")
    solution = actions.add_parser("solution", help="show NAME's reference solution (the library's code)")
    solution.add_argument("name", metavar="NAME")

    check = sub.add_parser("check", help="check your solution of an exercise (exit 0 only when every check passes)")
    check.add_argument("name", metavar="NAME")
    check.add_argument("file", nargs="?", type=Path, metavar="FILE", help=f"default: {_EXERCISES_DIR}/NAME.py")
    check.add_argument("--json", action="store_true", help="print a machine-readable result (for autograders)")
    check.add_argument(
        "--timeout", type=float, default=60.0, metavar="S", help="time limit for your code, in seconds (default: 60)"
    )
    check.add_argument("--seed", type=int, help="reproduce a run's random inputs")


def _cmd_exercises(args: argparse.Namespace) -> int:
    from attnlab import exercises
    from attnlab.exercises import skeleton, status

    if args.action is None:
        sections = exercises.by_section()
        width = max(len(ex.title) for items in sections.values() for ex in items)
        for section, items in sections.items():
            print(f"{section}  {exercises.SECTIONS[section]}")
            for ex in items:
                print(f"  {ex.name:<29} {ex.title:<{width}}  {status.status(ex.name, args.dir)}")
            print()
        start = f"{PROG} exercises start NAME" + ("" if args.dir == _EXERCISES_DIR else f" --dir {args.dir}")
        print(f"your folder: {args.dir}  (start one: {start}; check it: {PROG} check NAME {args.dir / 'NAME.py'})")
        return 0
    with _user_input():
        ex = exercises.get(args.name)
    if args.action == "solution":
        print(skeleton.solution(ex), end="")
        return 0
    path = args.dir / f"{ex.name}.py"
    if path.exists() and not args.force:
        raise UsageError(f"start: {path} exists; pass --force to overwrite it")
    from attnlab.fileio import atomic_write

    with atomic_write(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(skeleton.skeleton(ex, path))
    print(f"wrote {path}")
    print(f"check it with: {PROG} check {ex.name} {path}")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    import json

    from attnlab.exercises import check_name, status
    from attnlab.exercises.isolation import check_file

    with _user_input():
        name = check_name(args.name)
    path = args.file if args.file is not None else _EXERCISES_DIR / f"{name}.py"
    if not path.is_file():
        raise UsageError(f"check: no file {path} (write one with: {PROG} exercises start {name})")
    if not args.timeout > 0:
        raise UsageError(f"--timeout: expected a number of seconds > 0, got {args.timeout}")
    result = check_file(name, path, args.timeout, args.seed)
    status.record(path, result)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
        return 0 if result.passed else EXIT_FAILED
    if result.error is not None:
        return _fail(result.error, EXIT_FAILED)
    print(result.table())
    return 0 if result.passed else EXIT_FAILED
