"""The headline in ONE device call: ELECTRA-Small and its MLM baseline side by side at equal FLOPs, then GLUE-5.

    python runs/gpu_call.py run DATA RUN OUT [--dry-run] [settings]   # what `bash runs/gpu.sh` runs there
    python runs/gpu_call.py child [--drill-compile-failure] -- ARGS    # one arm or GLUE job: `electra ARGS`

Phases, each with its own deadline in seconds from the call's start (settings below):
1. `electra prepare` of the carried books (CPU) while the idle GPU runs the step benchmark (ours vs
   the transformers-built step at Small 128 x 128: compiled first, so that the ELECTRA arm's own
   compilation may find the graph in inductor's on-disk cache, then eager, then per layer); the
   benchmark is cut at ``--prep-seconds``, the preparation never (it is needed).
2. ELECTRA and MLM (with --gdes-arm also ELECTRA+GDES) pretrain side by side on the one GPU, compiled, bf16;
   steps from the official FLOPs counter (``electra.experiment.plan``), each arm checkpointing at
   ``--pairs`` equal-FLOPs points. At the pretraining deadline both get SIGTERM (the loop saves on
   it) and the newest checkpoint pair that both reached is taken. An arm whose compiled run fails
   restarts eager for the time left, and the record says so.
3. GLUE-5 x ``--seeds`` on both checkpoints at once: one process per (arm, task), the seeds of the
   largest tasks (``--split-seeds``) in processes of their own; cut at the deadline, finished seeds kept.
After every phase OUT/results.json is rewritten and the logs copied (7 files: the device tool returns
8), so a call killed at its limit still returns what it had. `runs/gpu_report.py` renders it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from gpu_jobs import REPO, Job, run_slots, start_mps, stop, stop_mps, tail

RUN_MARKER = ".gpu-call-run"
LOG_LIMIT = 4 * 2**20
GLUE5 = ("cola", "sst2", "mrpc", "stsb", "rte")
#: The dry run's model: the debug preset made smaller still (CPU, seconds per phase).
DRY_MODEL = ["model.hidden_size=32", "model.embedding_size=32", "model.ffn_size=64", "model.max_position=512",
             "train.batch_size=8", "train.log_every=10", "train.eval_batches=2"]


@dataclass
class Settings:
    total_seconds: float = 555.0     # the whole call, bundle included; the device tool's limit is 600
    prep_seconds: float = 60.0       # phase 1: the benchmark is cut here
    glue_seconds: float = 200.0      # phase 3
    bundle_seconds: float = 12.0     # reserved at the end for the last bundle
    preset: str = "small"
    electra_steps: int = 5000        # MLM gets the steps of equal FLOPs (6,611 for small at 128 x 128)
    pairs: int = 8                   # equal-FLOPs checkpoints per arm: every 625 and 826 steps
    warmup_fraction: float = 0.1
    max_length: int = 128
    compile: bool = True
    seeds: int = 3
    slots: int = 16                  # fine-tuning processes at once
    split_seeds: str = "sst2"        # tasks whose seeds run in processes of their own
    term_grace: float = 20.0         # seconds a stopped job gets to save and exit
    mps: bool = True                 # CUDA MPS: processes' kernels run at once, not time-sliced (2x measured)
    compile_scope: str = "step"      # pretraining: "step" (whole step, measured on the H200) or "layers" (regional)
    ft_compile: bool = False         # fine-tuning: each layer compiled (--set compile=true; not yet run on a GPU)
    gdes_arm: bool = False           # third arm, ELECTRA with embedding_sharing=gdes (off until its GPU cost is known)
    drill_compile_failure: str = ""  # an arm whose compiled run is made to fail (the dry run's drill)
    drill_ft_compile_failure: str = ""  # a GLUE task whose compiled jobs are made to fail (the dry run's drill)
    ft_max_train: int = 0            # fine-tuning rows per task (0: all)
    ft_set: str = ""                 # extra fine-tuning settings, "task:key=value;..." (dry run)
    dry_run: bool = False


#: The dry run: RTE's jobs are made endless (a deadline always cuts them) and hold 2 of the 4 slots;
#: STS-B's compiled jobs, next in line, fail (the drill) and are retried eager; the rest go through the
#: free slots until the deadline cuts them.
DRY = dict(total_seconds=120.0, prep_seconds=40.0, glue_seconds=45.0, bundle_seconds=5.0, preset="debug",
           electra_steps=20000, pairs=200, compile=False, ft_compile=False, slots=4, term_grace=10.0, mps=False,
           drill_compile_failure="electra", drill_ft_compile_failure="stsb", ft_max_train=64,
           ft_set="rte:epochs=100000")


class Call:
    """One call's state: paths, clock, the results dict, and the bundle written to OUT."""

    def __init__(self, s: Settings, data: Path, run: Path, out: Path):
        self.s, self.data, self.run, self.out = s, data, run, out
        self.t0 = time.time()
        self.env = os.environ | {"PYTHONPATH": str(REPO / "src") + os.pathsep + str(REPO / "runs"),
                                 "PYTHONUNBUFFERED": "1", "TQDM_DISABLE": "1"}
        self.logs = run / "logs"
        self.results: dict = {"dry_run": s.dry_run, "settings": asdict(s), "env": environment(),
                              "phases": {}, "notes": [], "mps": {"used": False, "detail": "off (--mps false)"}}

    def at(self, seconds: float) -> float:
        return self.t0 + seconds

    def say(self, msg: str) -> None:
        line = f"[{time.time() - self.t0:6.1f} s] {msg}"
        print(line, flush=True)
        with open(self.logs / "call.log", "a") as f:
            f.write(line + "\n")

    def phase(self, name: str, t_start: float, **extra) -> None:
        self.results["phases"][name] = {"start_s": round(t_start - self.t0, 1),
                                        "end_s": round(time.time() - self.t0, 1), **extra}

    def bundle(self) -> None:
        """results.json and the logs into OUT, each whole (written aside, then renamed)."""
        self.out.mkdir(parents=True, exist_ok=True)
        self.results["elapsed_s"] = round(time.time() - self.t0, 1)
        files = {"results.json": json.dumps(self.results, indent=2) + "\n"}
        for name in ("call", "prepare", "bench", "electra", "mlm", "gdes", "glue"):  # gdes.log: the 8th file, if any
            if (self.logs / f"{name}.log").is_file():
                files[f"{name}.log"] = tail(self.logs / f"{name}.log", LOG_LIMIT)
        for name, text in files.items():
            tmp = self.out / f".{name}.tmp"
            tmp.write_text(text)
            tmp.replace(self.out / name)

    def python(self, *args: str) -> list[str]:
        return [sys.executable, *args]


def environment() -> dict:
    import platform

    import torch

    cuda = torch.cuda.is_available()
    return {"device": torch.cuda.get_device_name(0) if cuda else f"CPU ({platform.processor() or platform.machine()})",
            "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
            "cpus": os.cpu_count(), "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}


# ---- phase 1: prepare the books while the GPU runs the step benchmark ------------------------------

def phase_prepare(c: Call) -> bool:
    s, t = c.s, time.time()
    prep = Job("prepare", c.python("-m", "electra", "prepare", str(c.data / "corpus"), str(c.data / "tok"),
                                   str(c.run / "data"), "--max-length", str(s.max_length), "--file-per-document"),
               c.logs / "prepare.log")
    bench_json = c.run / "bench.json"
    bench = Job("bench", c.python(str(REPO / "benchmarks" / "gpu_suite.py"), str(bench_json),
                                  "--rows", "small-128x128", "--modes", "compiled,eager,layers",
                                  *(["--dry-run"] if s.dry_run else [])), c.logs / "bench.log")
    prep.start(c.env)
    bench.start(c.env)
    c.say("phase 1: preparing the books; the step benchmark runs on the GPU meanwhile")
    while not prep.poll():
        if time.time() > c.at(2 * s.prep_seconds):
            stop([prep, bench], s.term_grace)
            break
        time.sleep(0.5)
    while not bench.poll() and time.time() < c.at(s.prep_seconds):
        time.sleep(0.5)
    stop([bench], s.term_grace)
    c.results["bench"] = json.loads(bench_json.read_text()) if bench_json.is_file() else None
    ok = prep.status == "done"
    c.results["data"] = json.loads((c.run / "data" / "summary.json").read_text()) if ok else None
    c.phase("prepare_and_bench", t, jobs=[prep.record(), bench.record()])
    c.say(f"phase 1 done: prepare {prep.status} ({prep.seconds()} s), bench {bench.status} ({bench.seconds()} s)")
    if not ok:
        c.results["notes"].append(f"preparing the books {prep.status}: see prepare.log; nothing else could run")
    c.bundle()
    return ok


# ---- phase 2: both arms side by side, paired checkpoints at equal FLOPs ----------------------------

def plan_arms(s: Settings) -> dict:
    """Steps, checkpoint interval and the paired schedule of each arm (official FLOPs counter); with
    ``gdes_arm`` a third, ELECTRA with gradient-disentangled embedding sharing, at ELECTRA's FLOPs."""
    from electra.config import load_config, parse_overrides
    from electra.experiment import plan
    from electra.train.flops import official_train_flops_per_step

    model = DRY_MODEL if s.dry_run else []
    p = plan(s.preset, model, None, s.electra_steps, s.max_length)
    if s.gdes_arm:
        cfg = load_config(s.preset, overrides=parse_overrides([*model, "model.embedding_sharing=gdes"]))
        p["per_step_flops"]["gdes"] = official_train_flops_per_step(cfg.model, "electra", cfg.train.batch_size,
                                                                    s.max_length)  # 3 E adds per token more
        p["steps"]["gdes"] = round(p["flops"]["electra"] / p["per_step_flops"]["gdes"])
    arms = {}
    for arm, n in p["steps"].items():
        every = max(1, round(n / s.pairs))
        arms[arm] = {"steps": n, "every": every, "warmup": round(s.warmup_fraction * n),
                     "schedule": [min(k * every, n) if k < s.pairs else n for k in range(1, s.pairs + 1)],
                     "flops_per_step": p["per_step_flops"][arm]}
    return arms


def arm_job(c: Call, arm: str, a: dict, compiled: bool, attempt: int) -> Job:
    s = c.s
    run = c.run / "pretrain" / (arm if compiled else f"{arm}-eager")
    sets = [f"train.warmup_steps={a['warmup']}", f"train.save_every={a['every']}",
            f"train.eval_every={max(1, a['every'] // 2)}", "train.keep_checkpoints=0",
            f"train.compile={'true' if compiled else 'false'}", f"train.compile_scope={s.compile_scope}",
            *(DRY_MODEL if s.dry_run else [])]
    sets += ["model.embedding_sharing=gdes"] if arm == "gdes" else []
    drill = compiled and s.drill_compile_failure == arm
    cmd = c.python(str(Path(__file__)), "child", *(["--drill-compile-failure"] if drill else []), "--",
                   "pretrain", str(c.run / "data"), str(run), "--preset", s.preset,
                   "--objective", "mlm" if arm == "mlm" else "electra",
                   "--steps", str(a["steps"]), "--no-progress", *[x for kv in sets for x in ("--set", kv)])
    return Job(f"{arm} ({'compiled' if compiled else 'eager'})", cmd, c.logs / f"{arm}.log",
               info={"arm": arm, "compiled": compiled, "attempt": attempt, "run": str(run)})


def phase_pretrain(c: Call) -> dict | None:
    s, t = c.s, time.time()
    arms = plan_arms(s)
    c.results["plan"] = arms
    deadline = c.at(s.total_seconds - s.glue_seconds - s.bundle_seconds)
    # The drill's arm starts compiled even where compilation is off (the dry run), so its failure is real.
    jobs = {arm: [arm_job(c, arm, a, s.compile or s.drill_compile_failure == arm, 1)] for arm, a in arms.items()}
    for arm, (j,) in jobs.items():
        j.start(c.env)
        c.say(f"phase 2: {arm} pretraining, {arms[arm]['steps']:,} steps, checkpoints every {arms[arm]['every']:,}")
    last_report = time.time()
    while time.time() < deadline:
        for arm, tries in jobs.items():
            j = tries[-1]
            if j.poll() and j.status == "failed" and j.info["compiled"]:
                c.say(f"{arm}: the compiled run failed (exit {j.rc}); restarting eager for the time left")
                c.results["notes"].append(f"{arm}: the compiled run failed (exit {j.rc}); the arm ran eager after "
                                          f"{time.time() - c.t0:.0f} s of the call (see {arm}.log)")
                tries.append(arm_job(c, arm, arms[arm], False, 2))
                tries[-1].start(c.env)
        if all(tries[-1].status in ("done", "failed") for tries in jobs.values()):
            break
        if time.time() - last_report > 30:
            c.say("progress: " + ", ".join(f"{arm} step {latest_step(Path(tr[-1].info['run']))}"
                                           for arm, tr in jobs.items()))
            last_report = time.time()
        time.sleep(1)
    stop([tr[-1] for tr in jobs.values()], s.term_grace)
    c.results["arms"] = {arm: arm_record(tries, arms[arm]) for arm, tries in jobs.items()}
    pair = newest_pair(c.results["arms"], arms, s.pairs)
    c.results["pair"] = pair
    c.phase("pretrain", t)
    c.say("phase 2 done: " + ", ".join(f"{arm} reached step {r['steps_reached']:,} ({r['status']})"
                                       for arm, r in c.results["arms"].items())
          + (f"; pair {pair['k']}/{s.pairs} of the budget" if pair else "; no checkpoint pair reached"))
    if pair is None:
        c.results["notes"].append("no equal-FLOPs checkpoint pair was reached by both arms: nothing to fine-tune")
    c.bundle()
    return pair


def latest_step(run: Path) -> int:
    from electra.train.logger import read_metrics

    records = read_metrics(run)
    return int(records[-1].get("step", 0)) if records else 0


def arm_record(tries: list[Job], a: dict) -> dict:
    """What one arm did: its attempts, checkpoints (union over attempts), speed and curves."""
    from electra.train.checkpoint import list_checkpoints
    from electra.train.logger import read_metrics

    checkpoints: dict[int, str] = {}
    train, heldout = [], []
    for j in tries:
        run = Path(j.info["run"])
        for ck in list_checkpoints(run):
            checkpoints.setdefault(int(ck.name.split("-")[1]), str(ck))  # the compiled attempt's first
        recs = read_metrics(run)
        mode = "compiled" if j.info["compiled"] else "eager"
        train += [{**r, "attempt": mode} for r in recs if r.get("split") != "heldout"]
        heldout += [{**r, "attempt": mode} for r in recs if r.get("split") == "heldout"]
    last = tries[-1]
    steady = [r for r in train if r["attempt"] == ("compiled" if last.info["compiled"] else "eager")][1:]
    mfus = [r["mfu"] for r in steady if r.get("mfu") is not None]
    return {"attempts": [j.record() for j in tries], "status": last.status,
            "steps_planned": a["steps"], "steps_reached": max([r["step"] for r in train] + [0]),
            "checkpoints": {str(k): v for k, v in sorted(checkpoints.items())},
            "tokens_per_s_median": statistics.median(r["tokens_per_s"] for r in steady) if steady else None,
            "mfu_median": statistics.median(mfus) if mfus else None, "train": train, "heldout": heldout}


def newest_pair(records: dict, arms: dict, pairs: int) -> dict | None:
    """The newest k whose scheduled checkpoint both arms reached, with each side's step and FLOPs."""
    for k in range(pairs, 0, -1):
        steps = {arm: arms[arm]["schedule"][k - 1] for arm in arms}
        if all(str(steps[arm]) in records[arm]["checkpoints"] for arm in arms):
            flops = {arm: steps[arm] * arms[arm]["flops_per_step"] for arm in arms}
            return {"k": k, "fraction": k / pairs, "steps": steps, "flops": flops,
                    "checkpoints": {arm: records[arm]["checkpoints"][str(steps[arm])] for arm in arms},
                    "flops_mismatch": abs(flops["mlm"] - flops["electra"]) / flops["electra"]}
    return None


# ---- phase 3: GLUE-5 on both checkpoints at once ---------------------------------------------------

def glue_jobs(c: Call, pair: dict) -> list[Job]:
    """One job per (arm, task), or per seed for --split-seeds tasks; the costliest first."""
    from electra.finetuning.glue_tasks import get_task

    s = c.s
    split = {t.strip() for t in s.split_seeds.split(",") if t.strip()}
    extra: dict[str, list[str]] = {}
    for item in filter(None, (x.strip() for x in s.ft_set.split(";"))):
        task, kv = item.split(":", 1)
        extra.setdefault(task, []).append(kv)
    jobs = []
    for task in GLUE5:
        info = get_task(task)
        rows = sum(1 for _ in open(c.data / "glue" / info.name / "train.tsv", encoding="utf-8")) - 1
        rows = min(rows, s.ft_max_train) if s.ft_max_train else rows
        groups = [(k, 1) for k in range(s.seeds)] if task in split else [(0, s.seeds)]
        for arm, ckpt in pair["checkpoints"].items():
            for first, n in groups:
                out = c.run / "glue" / arm / (f"{task}-seed{first}" if task in split else task)
                name = f"{arm} {info.name}" + (f" seed {first}" if task in split else "")
                compiled = s.ft_compile or s.drill_ft_compile_failure == task
                epochs = next((float(kv[7:]) for kv in extra.get(task, []) if kv.startswith("epochs=")), info.epochs or 3)
                jobs.append(glue_job(c, name, ckpt, task, first, n, out, compiled, extra.get(task, []),
                                     {"arm": arm, "task": info.name, "cost": rows * epochs * n}))
    return sorted(jobs, key=lambda j: -j.info["cost"])


def glue_job(c: Call, name: str, ckpt: str, task: str, first: int, n: int, out: Path, compiled: bool,
             extra: list[str], info: dict) -> Job:
    """`electra finetune` of seeds first..first+n-1 (through the child wrapper, for the drill)."""
    s = c.s
    sets = [f"seed={first}", f"compile={'true' if compiled else 'false'}", *extra]
    drill = compiled and s.drill_ft_compile_failure == task
    cmd = c.python(str(Path(__file__)), "child", *(["--drill-compile-failure"] if drill else []), "--",
                   "finetune", ckpt, "--task", task, "--seeds", str(n), "--out", str(out),
                   "--glue-dir", str(c.data / "glue"), "--cache-dir", str(c.run / "cache"),
                   "--no-save-models", "--no-test-predictions", "--quiet",
                   *[x for kv in sets for x in ("--set", kv)],
                   *(["--max-train", str(s.ft_max_train)] if s.ft_max_train else []))
    return Job(name + ("" if compiled else " (eager)"), cmd, c.logs / "glue" / f"{info['arm']}-{out.name}.log",
               info={**info, "seeds": n, "first": first, "out": str(out), "compiled": compiled, "extra": extra,
                     "ckpt": ckpt, "task_flag": task})


def eager_retry(c: Call, j: Job) -> Job | None:
    """A compiled GLUE job that failed: its unfinished seeds again, eager, in a folder of their own."""
    if not j.info["compiled"]:
        return None
    done = len(list(Path(j.info["out"]).glob(f"{j.info['task']}/seed*/seed.json")))
    if done >= j.info["seeds"]:
        return None
    c.results["notes"].append(f"GLUE job {j.name}: the compiled run failed (exit {j.rc}); its {j.info['seeds'] - done} "
                              f"unfinished seed(s) ran again eager")
    c.say(f"{j.name}: the compiled run failed (exit {j.rc}); retrying its unfinished seeds eager")
    info = {k: j.info[k] for k in ("arm", "task", "cost")}
    return glue_job(c, j.name, j.info["ckpt"], j.info["task_flag"], j.info["first"] + done, j.info["seeds"] - done,
                    Path(j.info["out"] + "-eager"), False, j.info["extra"], info)


def phase_glue(c: Call, pair: dict) -> None:
    s, t = c.s, time.time()
    jobs = glue_jobs(c, pair)
    c.say(f"phase 3: {len(jobs)} fine-tuning processes ({s.slots} at a time) on the pair at "
          f"{pair['flops']['electra']:.3g} FLOPs (ELECTRA step {pair['steps']['electra']:,}, "
          f"MLM step {pair['steps']['mlm']:,})")
    run_slots(jobs, s.slots, c.at(s.total_seconds - s.bundle_seconds), c.env, min(s.term_grace, 5.0),
              retry=lambda j: eager_retry(c, j))
    c.results["glue"] = glue_record(jobs, pair)
    with open(c.logs / "glue.log", "w") as f:
        for j in jobs:
            f.write(f"===== {j.name}: {j.status} ({j.seconds()} s)\n{tail(j.log, LOG_LIMIT // 16)}\n")
    for j in jobs:
        if j.status != "done":
            kept = len(j.info.get("kept", []))
            c.results["notes"].append(f"GLUE job {j.name}: {j.status} ({kept} of {j.info['seeds']} seed(s) kept)")
    c.phase("glue", t)
    g = c.results["glue"]["headline"]
    c.say("phase 3 done: " + (f"{g['name']} ELECTRA {g['electra']:.1f}, MLM {g['mlm']:.1f}, "
                              f"difference {g['difference']:+.1f}" if g else "no task has seeds on both arms"))
    c.bundle()


def glue_record(jobs: list[Job], pair: dict) -> dict:
    """Finished seeds (their seed.json) per arm and task, the rows in the experiment's format, the headline."""
    from electra.experiment import checkpoint_row
    from electra.finetuning.glue_results import glue_score, summarize_seeds
    from electra.finetuning.glue_tasks import get_task

    runs: dict[str, dict[str, list]] = {arm: {} for arm in pair["checkpoints"]}
    for j in jobs:  # all ended: run_slots returns after the last one, or after stopping the rest
        kept = []
        for rec in sorted(Path(j.info["out"]).glob(f"{j.info['task']}/seed*/seed.json")):
            kept.append(json.loads(rec.read_text())["run"])
        j.info["kept"] = [r["seed"] for r in kept]
        runs[j.info["arm"]].setdefault(j.info["task"], []).extend(kept)
    rows = []
    for arm, tasks in runs.items():
        tasks = {name: sorted(rs, key=lambda r: r["seed"]) for name, rs in tasks.items() if rs}
        res = {"tasks": {name: {**summarize_seeds(get_task(name), rs), "seeds": rs} for name, rs in tasks.items()}}
        res["glue_score"] = glue_score(res["tasks"])
        rows.append(checkpoint_row(arm, pair["fraction"], pair["steps"][arm], pair["flops"][arm], res))
    common = sorted(set.intersection(*(set(r["tasks"]) for r in rows)))
    headline = None
    if common:
        score = {r["arm"]: sum(r["tasks"][t]["median"] for t in common) / len(common) for r in rows}
        headline = {"name": f"GLUE-{len(common)}", "tasks": common, "electra": score["electra"], "mlm": score["mlm"],
                    "difference": score["electra"] - score["mlm"]}
        if "gdes" in score:
            headline |= {"gdes": score["gdes"], "gdes_minus_electra": score["gdes"] - score["electra"]}
    return {"jobs": [j.record() for j in jobs], "rows": rows, "headline": headline}


# ---- the call ---------------------------------------------------------------------------------------

def take_run_folder(run: Path) -> None:
    """RUN is ours (made by an earlier call: replaced) or new; anything else is refused."""
    if run.exists():
        if not (run / RUN_MARKER).is_file():
            fail(f"{run} exists and was not made by runs/gpu_call.py; choose another folder (GPU_RUN)")
        shutil.rmtree(run)
    (run / "logs").mkdir(parents=True)
    (run / RUN_MARKER).write_text("made by runs/gpu_call.py; replaced by the next call\n")


def fail(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(2)


def run_call(s: Settings, data: Path, run: Path, out: Path) -> int:
    import torch

    if not s.dry_run and not torch.cuda.is_available():
        fail("no CUDA device here; on a CPU use 'bash runs/gpu.sh --dry-run'")
    staged = data / "STAGED.json"
    if not staged.is_file():
        fail(f"{data} is not staged: run 'bash runs/gpu.sh{' --dry-run' if s.dry_run else ''} stage' first")
    if json.loads(staged.read_text()).get("toy") != s.dry_run:
        fail(f"{data} was staged for {'the GPU run' if s.dry_run else 'the dry run'}; stage it again")
    if out.resolve() == run.resolve() or run.resolve() in out.resolve().parents and out.exists():
        fail(f"OUT {out} may not be the run folder or an existing folder inside it")
    take_run_folder(run)
    c = Call(s, data, run, out)
    c.say(f"settings: {json.dumps(asdict(s))}")
    c.say(f"device: {c.results['env']['device']}, torch {c.results['env']['torch']}")
    mps_env = None
    if s.mps:
        mps_env, detail = start_mps(c.env)
        c.results["mps"] = {"used": mps_env is not None, "detail": detail}
        c.say(f"CUDA MPS: {detail}")
        c.env |= mps_env or {}
    try:
        c.bundle()
        if not phase_prepare(c):
            return 1
        pair = phase_pretrain(c)
        if pair is None:
            return 1
        phase_glue(c, pair)
    finally:
        if mps_env is not None:
            c.say(f"CUDA MPS: {stop_mps(c.env)}")
    c.say(f"done in {time.time() - c.t0:.0f} s; results in {out}")
    return 0


def child_main(argv: list[str]) -> int:
    """One pretraining arm or fine-tuning job: `electra ARGS` in this process; the drill makes torch.compile
    fail as a real compilation failure would (an exception before the first step), to prove the eager fallback."""
    drill = argv[:1] == ["--drill-compile-failure"]
    args = argv[1:] if drill else argv
    if args[:1] == ["--"]:
        args = args[1:]
    if drill:
        import torch

        def broken(*a, **k):
            raise RuntimeError("compile-failure drill: torch.compile made to fail (runs/gpu_call.py --drill)")

        torch.compile = broken
    from electra.cli import main

    return main(args)


def main() -> int:
    if sys.argv[1:2] == ["child"]:
        return child_main(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("run")
    p.add_argument("data", type=Path)
    p.add_argument("run", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--dry-run", action="store_true")
    for name, default in asdict(Settings()).items():
        if name == "dry_run":
            continue
        flag = "--" + name.replace("_", "-")
        if isinstance(default, bool):
            p.add_argument(flag, type=lambda v: v.lower() in ("1", "true", "yes"), default=None, metavar="BOOL")
        else:
            p.add_argument(flag, type=type(default), default=None)
    a = ap.parse_args()
    given = {k: v for k, v in vars(a).items() if k in asdict(Settings()) and v is not None}
    s = Settings(**{**(DRY if a.dry_run else {}), **given, "dry_run": a.dry_run})
    return run_call(s, a.data, a.run, a.out)


if __name__ == "__main__":
    sys.exit(main())
