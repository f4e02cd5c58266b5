"""Sweep stage, the loop: ``sweep:`` -> one parent MLflow run, one nested run per trial.

``run_sweep`` opens the parent run, runs the nodes no swept parameter reaches once
(``run_pipeline`` in the parent run, keeping what they hand on in memory), then each
trial through ``run_pipeline`` as a child run (``mlflow.parentRunId``) with the trial's
parameters, what ran once preloaded and its persisted outputs in a folder of its own.
A failing trial is a FAILED child and the sweep goes on (unless ``fail_fast``);
Ctrl-C leaves the running child and the parent KILLED. At the end the best trial's
files are copied into place, its model is logged into its run (and promoted through
``model.promote``), and the parent gets the leaderboard.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kmlc.compiler.project import CompiledProject, compile_project
from kmlc.config.localpath import local_path
from kmlc.config.selection import Selection
from kmlc.config.spec import ProjectSpec, RunnerSpec, SweepSpec
from kmlc.config.sweep import for_candidate, inference_candidates
from kmlc.errors import KmlcError, RunError, RunInterrupted
from kmlc.model.logged import log_pipeline_model
from kmlc.run import RunOptions, _quiet, _terminate_as_interrupt, run_pipeline
from kmlc.runners import runner_kind
from kmlc.sweep.board import Board, LiveBoard
from kmlc.sweep.factor import SweepPlan, plan_sweep, private_path
from kmlc.sweep.record import close_trials, record_sweep
from kmlc.sweep.remote import interrupt_trials, run_remote_trial
from kmlc.sweep.space import Search, Trial, params_command, search_for
from kmlc.sweep.trial_job import TrialJob, TrialResult, with_values
from kmlc.tracking.session import RunSession
from kmlc.tracking.worker import DISABLE_ENV

__all__ = ["SWEEP_FOLDER", "SweepResult", "TrialResult", "run_sweep", "sweep_pipeline"]

SWEEP_FOLDER = Path(".kmlc") / "sweeps"  # under the project: one folder per sweep run


@dataclass(frozen=True)
class SweepResult:
    run_id: str
    status: str
    pipeline: str
    tracking_uri: str
    trials: tuple[TrialResult, ...]
    best: TrialResult | None
    command: str | None  # the `kmlc run` that reproduces the best trial
    skipped: int = 0
    model_uri: str | None = None
    registered_version: str | None = None
    promotion: Any = None
    notes: tuple[str, ...] = ()
    folder: Path | None = None  # the trials' private files


def sweep_pipeline(spec: ProjectSpec, pipeline: str | None) -> str:
    """The pipeline a sweep runs: the argument, else ``sweep.pipeline``, else training."""
    if pipeline:
        return pipeline
    if spec.sweep is not None and spec.sweep.pipeline:
        return spec.sweep.pipeline
    return "training" if "training" in spec.pipeline_names else "__default__"


def board_for(sweep: SweepSpec, total: int | None,
              echo: Callable[[str], None] | None) -> Board:
    """The leaderboard: lines through ``echo`` if given; else a table redrawn in place
    when stdout is a terminal, plain lines on stderr when it is not."""
    if echo is not None:
        return Board(sweep, total, echo)
    if sys.stdout.isatty():
        return LiveBoard(sweep, total)
    return Board(sweep, total, lambda line: print(line, file=sys.stderr, flush=True))


def _stop_trial(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt("the sweep stopped this trial")


def _child_start(sweep: int) -> None:
    """A trial process: out of the terminal's process group (the terminal's Ctrl-C is
    the sweep's; the sweep stops its trials with SIGTERM), MLflow called from this
    process, and never outliving the sweep's process ``sweep``. SIGTERM raises
    ``KeyboardInterrupt`` wherever the trial is, inside a node or between two (where a
    stop ignored would let the trial run its next nodes to the end, its sweep gone)."""
    signal.signal(signal.SIGTERM, _stop_trial)
    os.setpgrp()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with(sweep)
    # the terminal's table is the sweep's to draw: this process writes plain lines
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    os.environ[DISABLE_ENV] = "0"


def _die_with(sweep: int) -> None:
    """Linux: this process gets SIGTERM when the sweep's process ends, however it ends
    (SIGKILL, the out-of-memory killer), as the sweep itself sends on Ctrl-C: the trial
    stops where it is and its run is closed as KILLED, so no trial runs on, orphaned,
    after its sweep. Where the sweep is already gone, the trial never starts."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != sweep:  # it died before the line above: nothing was started
        os._exit(1)


def _forked_trial(loop: _Loop, trial: Trial, answer: Any) -> None:
    """The body of a trial's forked process: the trial's result sent on ``answer``."""
    _child_start(loop.pid)
    recorded = len(loop.results)  # this process's copy, as it was when forked
    try:
        result = loop._trial(trial)
    except KeyboardInterrupt:  # the run is closed KILLED; its result recorded, if it had one
        result = (loop.results[-1] if len(loop.results) > recorded
                  else TrialResult.killed(trial))
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # done: a late stop changes nothing
    with contextlib.suppress(OSError):  # a sweep that died reads no result
        answer.send(result)
        answer.close()


def _died(trial: Trial, exitcode: int | None) -> TrialResult:
    """The result of a trial whose process ended without sending one."""
    if exitcode is not None and exitcode < 0:
        try:
            how = f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            how = f"was killed by signal {-exitcode}"
        if exitcode == -signal.SIGKILL:
            how += " (out of memory, or killed by hand)"
    else:
        how = f"exited with code {exitcode}"
    return TrialResult(trial, None, "FAILED", None, 0.0, f"the trial's process {how}")


def run_sweep(spec: ProjectSpec, pipeline: str | None = None,
              options: RunOptions | None = None, *, file: str | None = None,
              echo: Callable[[str], None] | None = None) -> SweepResult:
    """Run the sweep of ``spec`` (see the module docstring)."""
    sweep = spec.sweep
    if sweep is None:
        raise RunError("the file has no `sweep:` section", code="KMLC630",
                       hint="add sweep: {parameters: {...}, metric: ..., direction: ...}")
    name = sweep_pipeline(spec, pipeline)
    if name in spec.tracking.disable_for:
        raise RunError(f"tracking is disabled for pipeline '{name}': a sweep compares its "
                       "trials by the metrics they log", code="KMLC634",
                       hint=f"remove '{name}' from tracking.disable_for to sweep it")
    options = options or RunOptions()
    notes = []
    runner = spec.runner.type
    dask = spec.runner if runner == "dask" else None  # each trial a task on the cluster
    if not runner_kind(runner).in_process:  # trials share values held in this process
        if dask is None:
            notes.append(f"the trials run their nodes on the sequential runner, not {runner}")
        spec = replace(spec, runner=replace(spec.runner, type="sequential"))
    options = replace(options, progress=False, cache=False, model=False)
    compiled = compile_project(spec)
    plan = plan_sweep(spec, sweep, name, compiled.pipeline(name))
    search = search_for(sweep)
    session = RunSession(spec, name, runner=runner if dask else spec.runner.type,
                         run_name=options.run_name or f"sweep-{name}",
                         command=options.command,
                         extra_tags={"kmlc.sweep": sweep.method,
                                     "kmlc.sweep.metric": sweep.metric})
    session.warm()
    _quiet(options.verbose, spec, options.quiet)
    loop = _Loop(spec, sweep, name, options, compiled, plan, search, session, echo, file)
    loop.notes.extend(notes)
    loop.dask = dask
    try:
        with _terminate_as_interrupt(), session:
            loop.run()
    except KmlcError as exc:
        exc.add_run(session.run_id, session.status, (*session.notes, *loop.notes))
        raise
    except KeyboardInterrupt as exc:
        raise RunInterrupted(*exc.args, run_id=session.run_id, status=session.status,
                             notes=(*session.notes, *loop.notes)) from exc
    return loop.result()


class _Loop:
    def __init__(self, spec: ProjectSpec, sweep: SweepSpec, pipeline: str,
                 options: RunOptions, compiled: CompiledProject, plan: SweepPlan,
                 search: Search, session: Any, echo: Callable[[str], None] | None,
                 file: str | None):
        self.spec, self.sweep, self.pipeline = spec, sweep, pipeline
        self.options, self.compiled, self.plan = options, compiled, plan
        self.search, self.session, self.echo, self.file = search, session, echo, file
        self.results: list[TrialResult] = []
        self.skipped = 0
        self.shared: dict[str, Any] = {}
        self.board = board_for(sweep, search.total, echo)
        self.folder: Path | None = None
        self.logged: Any = None
        self.notes: list[str] = []
        self.pid = os.getpid()
        self.job: TrialJob | None = None
        self.dask: RunnerSpec | None = None  # the cluster the trials run on, if any

    # ------------------------------------------------------------------ the run
    def run(self) -> None:
        run_id = self.session.wait_open()
        # the trials share the sweep's provenance tags and logging, set up once
        self.options = replace(self.options, base_tags=self.session.tags(), logging=False)
        self.folder = self.spec.root / SWEEP_FOLDER / run_id
        self.job = TrialJob(self.spec, self.sweep, self.pipeline, self.plan,
                            replace(self.options, parent_run_id=run_id), self.folder,
                            self.session.target)
        try:
            with self.board:  # on a terminal: the table, until the trials are over
                if self.plan.shared:
                    started = time.perf_counter()
                    shared = run_pipeline(self.spec, self.pipeline,
                                          replace(self.options, selection=Selection(
                                              nodes=self.plan.shared)),
                                          self.compiled, keep=self.plan.handoff,
                                          session=self.session)
                    self.shared = dict(shared.outputs)
                    each = max(len(n) for n in self.plan.trial_nodes.values())
                    self.board.note(f"ran once: {len(self.plan.shared)} nodes in "
                                    f"{time.perf_counter() - started:.1f}s; trials run "
                                    f"{each} nodes each")
                try:
                    stopped = self._trials()
                except KeyboardInterrupt:
                    self._close_trials("KILLED")
                    raise
                # a trial whose process or Dask worker died never closed its run
                self._close_trials("FAILED")
        finally:
            self._record()
        best = self.best()
        if best is not None:
            self._publish(best)
            self._model(best)
        if stopped is not None:
            raise RunError(f"trial {stopped.trial.number} failed and `fail_fast` stopped the "
                           f"sweep: {stopped.error}", code="KMLC632")
        if best is None:
            ran = [r for r in self.results if r.status == "FINISHED"]
            why = (f"no trial logged the metric '{self.sweep.metric}'" if ran
                   else "every trial failed")
            raise RunError(f"the sweep has no best trial: {why}", code="KMLC633")

    def _trials(self) -> TrialResult | None:
        """Run the trials; the failed trial that stopped the sweep (fail_fast), if any."""
        if self.dask is not None:
            return self._dask_trials()
        if self.sweep.parallel > 1:
            from multiprocessing import get_all_start_methods

            if "fork" in get_all_start_methods():
                return self._parallel_trials()
            self.notes.append("parallel trials need processes forked from this one, which "
                              "this platform cannot do: the trials ran one at a time")
        while True:
            trial = self.search.ask()
            if trial is None:
                return None
            if self._finished(self._trial(trial)):
                return self.results[-1]

    def _finished(self, result: TrialResult) -> bool:
        """Record a finished trial; True when it stops the sweep (fail_fast)."""
        self.results.append(result)
        self.search.tell(result.trial, result.value if result.status == "FINISHED" else None)
        self.board.add(result)
        if result.status == "FAILED" and self.sweep.fail_fast:
            total = self.search.total
            self.skipped = max(0, total - self.search.asked) if total else 0
            return True
        return False

    def _parallel_trials(self) -> TrialResult | None:
        """``parallel`` trials at once, each in a process forked from this one after the
        shared nodes ran: every trial reads their outputs without a copy or a pickle,
        and has its own MLflow run published in its own environment. One process per
        trial: a trial whose process dies (a C extension's crash, the out-of-memory
        killer) is that trial FAILED, and the others go on."""
        from multiprocessing import get_context
        from multiprocessing.connection import wait

        import mlflow.tracking  # noqa: F401  (imported once here, not once per trial process)

        context = get_context("fork")
        # a trial's pipe is ready when its process sent the result or ended without one
        running: dict[Any, tuple[Any, Any, Trial]] = {}  # pipe -> process, pipe, trial
        stopped: TrialResult | None = None
        try:
            while True:
                while stopped is None and len(running) < self.sweep.parallel:
                    trial = self.search.ask()
                    if trial is None:
                        break
                    receive, send = context.Pipe(duplex=False)
                    process = context.Process(
                        target=_forked_trial, args=(self, replace(trial, handle=None), send),
                        name=f"kmlc-trial-{trial.number}")
                    process.start()
                    send.close()
                    running[receive] = (process, receive, trial)
                if not running:
                    return stopped
                for ready in wait(list(running)):
                    # recorded, then forgotten: a Ctrl-C in between loses no trial (the
                    # handler below records what is still running and not recorded)
                    result = self._ended(*running[ready])
                    if self._finished(result) and stopped is None:
                        stopped = result
                    del running[ready]
        except KeyboardInterrupt:
            # the trials' processes are in a process group of their own: this process
            # tells each to stop (SIGTERM); each stops where it is, its run closed KILLED
            recorded = {r.trial.number for r in self.results}
            stopping = [entry for entry in running.values() if entry[2].number not in recorded]
            for process, _receive, _trial in stopping:
                with contextlib.suppress(OSError):
                    os.kill(process.pid, signal.SIGTERM)
            for process, receive, trial in stopping:
                if not receive.poll(60):  # a trial that does not stop within a minute
                    process.kill()
                result = self._ended(process, receive, trial)
                self.results.append(result if result.status == "KILLED" else
                                    TrialResult.killed(trial, result.run_id))
            raise
        finally:
            for process, receive, _trial in running.values():  # left by an error
                if process.is_alive():
                    process.kill()
                process.join()
                receive.close()

    @staticmethod
    def _ended(process: Any, receive: Any, trial: Trial) -> TrialResult:
        """The result a trial's process sent, once it has ended (or how it died)."""
        result: TrialResult | None = None
        with contextlib.suppress(EOFError, OSError):  # EOF: it ended without a result
            if receive.poll(0):
                result = receive.recv()
        process.join()
        receive.close()
        return _died(trial, process.exitcode) if result is None else replace(result,
                                                                             trial=trial)

    def _dask_trials(self) -> TrialResult | None:
        """Each trial a task on the Dask cluster (``kmlc.sweep.remote``), as many at once
        as the cluster has worker threads (or ``parallel``, if more)."""
        assert self.dask is not None
        runner = runner_kind("dask").make(replace(self.spec, runner=self.dask), ())
        try:
            with runner:
                return self._submit_trials(runner.client)
        finally:
            self.notes.extend(runner.notes)  # e.g. a cluster with no worker left

    def _submit_trials(self, client: Any) -> TrialResult | None:
        """The trials as tasks of ``client``'s cluster, ``width`` at a time."""
        import cloudpickle
        from distributed import wait

        assert self.job is not None
        token = uuid.uuid4().hex[:12]
        job_bytes = cloudpickle.dumps(self.job)  # the same for every trial: sent once
        pending: dict[Any, Trial] = {}
        stopped: TrialResult | None = None
        width = max(self.sweep.parallel, sum(client.nthreads().values()), 1)
        # on every worker: a trial's data on one worker alone would draw every trial there
        # (Dask places a task where its inputs are), the others idle until work is stolen
        shared, job = client.scatter([self.shared, job_bytes], hash=False, broadcast=True)
        try:
            while True:
                while stopped is None and len(pending) < width:
                    trial = self.search.ask()
                    if trial is None:
                        break
                    payload = cloudpickle.dumps((token, replace(trial, handle=None)))
                    pending[client.submit(run_remote_trial, job, payload, shared,
                                          pure=False,
                                          key=f"kmlc-trial-{trial.number}-{token}")] = trial
                if not pending:
                    return stopped
                done = wait(list(pending), return_when="FIRST_COMPLETED").done
                for future in done:
                    # recorded, then forgotten: a Ctrl-C in between loses no trial (the
                    # handler below records what is still pending and not recorded)
                    result = self._dask_result(future, pending[future])
                    if self._finished(result) and stopped is None:
                        stopped = result
                    del pending[future]
        except KeyboardInterrupt:
            # every worker interrupts this sweep's running trials (their runs close
            # as KILLED) and starts none of the others
            with contextlib.suppress(Exception):
                client.run(interrupt_trials, token)
            recorded = {r.trial.number for r in self.results}
            for future, trial in pending.items():
                if trial.number in recorded:
                    continue
                with contextlib.suppress(BaseException):
                    wait([future], timeout=60)
                result = (self._dask_result(future, trial) if future.done() else
                          TrialResult.killed(trial))
                self.results.append(result)
            raise

    @staticmethod
    def _dask_result(future: Any, trial: Trial) -> TrialResult:
        if future.status == "finished":
            return replace(future.result(), trial=trial)
        error = future.exception() if future.status == "error" else None
        return TrialResult(trial, None, "FAILED", None, 0.0,
                           f"the trial's task {future.status}: {error!r}")

    def _trial(self, trial: Trial) -> TrialResult:
        """One trial in this process (or one forked from it): an interrupt is raised on."""
        assert self.job is not None
        # a forked trial never writes to its parent's tracking worker
        tracker = self.session.tracker if os.getpid() == self.pid else None
        return self.job.run(trial, self.shared, self.compiled, tracker,
                            killed=self.results.append)

    def best(self) -> TrialResult | None:
        return self.board.best

    # ------------------------------------------------------------------ the end
    def _publish(self, best: TrialResult) -> None:
        """Copy the best trial's files into place, each file replaced atomically."""
        assert self.folder is not None
        folder = self.folder / f"trial-{best.trial.number:03d}"
        for name in self.plan.private:
            source = private_path(self.spec, name, folder)
            target = local_path(self.spec.datasets[name], self.spec.root)
            if target is None or not source.exists():
                continue
            if source.is_dir():  # a folder (versioned, partitioned): merged, nothing removed
                shutil.copytree(source, target, dirs_exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            handle, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
            os.close(handle)
            try:
                shutil.copy2(source, tmp)
                os.replace(tmp, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise

    def _model(self, best: TrialResult) -> None:
        """The bound model, built from the best trial's files, logged into its run."""
        spec = self.spec
        if spec.model is None or self.pipeline != "training" or best.run_id is None:
            return
        tracker = self.session.tracker
        best_spec = replace(spec, parameters=with_values(spec.parameters, best.trial.values))
        if best.trial.candidate and inference_candidates(spec.nodes, self.sweep.candidates):
            # the model holds the winning candidate's copy of the inference nodes
            best_spec = for_candidate(best_spec, best.trial.candidate)
        try:
            self.logged = tracker.wait_job(tracker.start_job(
                log_pipeline_model,
                {"spec": best_spec, "run_id": best.run_id, "tracking_uri": self.session.uri,
                 "registry_uri": self.session.registry_uri}))
        except KmlcError as exc:
            self.notes.append(f"the best trial's model could not be logged: {exc.message}")

    def _record(self) -> None:
        """The parent's leaderboard, best trial and counts (also after a failure)."""
        sweep = self.sweep
        paths = list(dict.fromkeys(p for r in self.results for p in r.trial.values))
        columns = ["trial", "candidate", *paths, sweep.metric, "seconds", "status", "run_id"]
        rows = [[r.trial.number, r.trial.candidate or "",
                 *(r.trial.values.get(p, "") for p in paths),
                 r.value if r.value is not None else "", round(r.seconds, 3), r.status,
                 r.run_id or ""] for r in self.results]
        best = self.best()
        tags = {"kmlc.sweep.trials": str(len(self.results)),
                "kmlc.sweep.failed": str(sum(r.status == "FAILED" for r in self.results)),
                "kmlc.sweep.skipped": str(self.skipped)}
        best_params: dict[str, Any] = {}
        if best is not None:
            tags["kmlc.sweep.best_run_id"] = best.run_id or ""
            tags["kmlc.sweep.best_trial"] = str(best.trial.number)
            tags["kmlc.sweep.command"] = self.command(best)
            best_params = dict(best.trial.values)
            if best.trial.candidate:
                best_params["candidate"] = best.trial.candidate
        tracker = self.session.tracker
        try:
            tracker.wait_job(tracker.start_job(record_sweep, {
                "target": self.session.target, "run_id": self.session.run_id,
                "columns": columns, "rows": rows,
                "best_params": {k: str(v) for k, v in best_params.items()},
                # the sweep's metric under its own name too (a candidate logs it namespaced)
                "best_metrics": ({**best.metrics, sweep.metric: best.value}
                                 if best is not None and best.value is not None
                                 else dict(best.metrics) if best is not None else {}),
                "tags": tags}))
        except KmlcError as exc:
            self.notes.append(f"the sweep's leaderboard could not be logged: {exc.message}")

    def _close_trials(self, status: str) -> None:
        """Once the trials are over: their runs still RUNNING closed as ``status`` (a
        trial stopped while it started, or whose process died, never closed its own)."""
        tracker = self.session.tracker
        try:
            closed = tracker.wait_job(tracker.start_job(close_trials, {
                "target": self.session.target, "experiment_id": self.session.experiment_id,
                "run_id": self.session.run_id, "status": status}))
        except KmlcError as exc:
            self.notes.append(f"the trials' runs could not be closed: {exc.message}")
            return
        if not closed:
            return
        self.notes.append(f"{len(closed)} trial run(s) left RUNNING closed as {status}: "
                          f"{', '.join(closed)}")
        number = {trial: run_id for run_id, trial in closed.items()}
        self.results = [replace(r, run_id=number.get(str(r.trial.number)))
                        if r.run_id is None else r for r in self.results]

    def command(self, best: TrialResult) -> str:
        return params_command(self.pipeline, best.trial, self.file)

    def result(self) -> SweepResult:
        best = self.best()
        logged = self.logged
        assert self.session.run_id
        return SweepResult(self.session.run_id, self.session.status, self.pipeline,
                           self.session.uri, tuple(self.results), best,
                           self.command(best) if best is not None else None, self.skipped,
                           getattr(logged, "model_uri", None),
                           getattr(logged, "registered_version", None),
                           getattr(logged, "promotion", None),
                           (*self.session.notes, *self.notes), self.folder)
