"""One queue of generation jobs, and one worker thread per device.

Every generation request, from the web UI or the A1111 API, becomes a :class:`Job` checked in
full by :meth:`animagine.Generator.check` *before* it is queued (a bad request never waits in
line to fail). The :class:`Worker` runs jobs in the order they came, one at a time on each of
its generators (one per device); it reports each job's place in the queue and its progress
step by step, and can interrupt a running job (diffusers' documented ``pipe._interrupt``
switch: the pass stops at the next step and decodes what it has, as A1111's interrupt does).
The queue is bounded: a full queue refuses a job with :class:`QueueFullError` at once.

A job's images are kept as PNG bytes with their metadata (A1111's ``parameters`` text and our
JSON), recorded in the :class:`~animagine.apps.serve.History` when the job asks for it. The
worker remembers the last :data:`KEEP_JOBS` finished jobs so clients can fetch their results.
"""

from __future__ import annotations

import asyncio
import collections
import io
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal

import attrs

from animagine.errors import AnimagineError
from animagine.metadata import GenerationParameters, png_info

if TYPE_CHECKING:
    from PIL.Image import Image

    from animagine.apps.serve._history import History
    from animagine.generation import GenerationOptions, GenerationPlan, Generator

__all__ = ["DEFAULT_QUEUE_SIZE", "KEEP_JOBS", "Job", "JobState", "QueueFullError", "Worker"]

#: The official demos' ``queue(max_size=20)``.
DEFAULT_QUEUE_SIZE: Final = 20
#: Finished jobs whose results stay available.
KEEP_JOBS: Final = 64

JobState = Literal["queued", "running", "done", "failed", "interrupted", "cancelled"]
_FINISHED: Final = frozenset({"done", "failed", "interrupted", "cancelled"})


class QueueFullError(AnimagineError, RuntimeError):
    """The generation queue is full: try again later (the API answers 503)."""


class _Interrupted(Exception):
    """Raised inside the worker when a job is cancelled between runs."""


def encode_png(image: Image, parameters: GenerationParameters) -> bytes:
    """The PNG file of ``image`` with ``parameters`` in its metadata, as bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=png_info(parameters))
    return buffer.getvalue()


@attrs.define(eq=False)
class Job:
    """One generation request: its checked runs, where it stands, and what it made.

    Attributes:
        id: A random hex id.
        plans: The checked runs, seeds fixed (A1111's ``n_iter`` is several runs).
        record: Whether its images go into the history.
        state: ``queued``, ``running``, ``done``, ``failed``, ``interrupted`` or ``cancelled``.
        created: When it was queued (seconds since the epoch).
        started: When it started running.
        finished: When it finished.
        steps_total: The denoising steps of all its runs, hires passes included.
        steps_done: The steps run so far.
        run: The run now going (0-based).
        images: The PNG bytes of each image, metadata included.
        parameters: How each image was made.
        history_ids: The history id of each image (when recorded).
        error: What went wrong, for a failed job.
    """

    id: str
    plans: tuple[GenerationPlan, ...]
    record: bool
    state: JobState = "queued"
    created: float = attrs.field(factory=time.time)
    started: float | None = None
    finished: float | None = None
    steps_total: int = 0
    steps_done: int = 0
    run: int = 0
    images: list[bytes] = attrs.field(factory=list)
    parameters: list[GenerationParameters] = attrs.field(factory=list)
    history_ids: list[int] = attrs.field(factory=list)
    error: str | None = None
    interrupt_requested: bool = False
    skip_requested: bool = False
    _event: threading.Event = attrs.field(factory=threading.Event, repr=False)
    _monotonic_start: float = attrs.field(default=0.0, repr=False)
    _callbacks: list[Callable[[], None]] = attrs.field(factory=list, repr=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False)

    @property
    def seeds(self) -> tuple[int, ...]:
        """Every image's seed, in order."""
        return tuple(seed for plan in self.plans for seed in plan.seeds)

    @property
    def count(self) -> int:
        """How many images the job makes."""
        return sum(len(plan.seeds) for plan in self.plans)

    @property
    def finished_state(self) -> bool:
        """Whether the job is over (done, failed, interrupted or cancelled)."""
        return self.state in _FINISHED

    @property
    def progress(self) -> float:
        """From 0 to 1."""
        if self.state == "done":
            return 1.0
        if self.steps_total <= 0:
            return 0.0
        return min(self.steps_done / self.steps_total, 1.0)

    def image_progress(self) -> list[float]:
        """Each image's progress, from 0 to 1, in seed order.

        A run (A1111's ``n_iter`` makes several, one after another) is one pass per distinct
        prompt, each with its hires pass; the images of a pass are denoised together and share
        its progress.
        """
        by_seed: dict[tuple[int, int], float] = {}
        offset = 0
        for number, plan in enumerate(self.plans):
            per_pass = pass_steps(plan)
            for part in plan.by_prompt():
                if self.state == "done":
                    fraction = 1.0
                else:
                    fraction = min(max(self.steps_done - offset, 0) / per_pass, 1.0)
                for seed in part.seeds:
                    by_seed[number, seed] = fraction
                offset += per_pass
        return [
            by_seed[number, seed] for number, plan in enumerate(self.plans) for seed in plan.seeds
        ]

    def eta(self) -> float | None:
        """Seconds left, estimated from the steps so far; None before the first step."""
        if self.started is None or self.steps_done <= 0 or self.finished_state:
            return None
        spent = time.monotonic() - self._monotonic_start
        return spent / self.steps_done * max(self.steps_total - self.steps_done, 0)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the job is over; False when ``timeout`` passed first."""
        return self._event.wait(timeout)

    async def finished_async(self) -> None:
        """Wait until the job is over, in an event loop, holding no thread meanwhile."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def settle() -> None:
            if not future.done():
                future.set_result(None)

        def wake() -> None:
            loop.call_soon_threadsafe(settle)

        self.add_done_callback(wake)
        await future

    def add_done_callback(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once the job is over (now, when it already is), in the thread
        that finishes it."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)
                return
        callback()

    def _finish(self) -> None:
        with self._lock:
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()


def pass_steps(plan: GenerationPlan) -> int:
    """The denoising steps of one pass of ``plan`` (one distinct prompt): the first pass's and
    the hires pass's, which runs ``int(hires_steps * strength)`` of its steps (as diffusers'
    img2img does)."""
    hires = 0
    if plan.hires is not None and plan.hires_steps is not None:
        hires = int(plan.hires_steps * plan.hires.strength)
    return plan.steps + hires


def _steps_of(plan: GenerationPlan) -> int:
    return pass_steps(plan) * len(plan.by_prompt())


class Worker:
    """Runs generation jobs in the order they were queued: one thread per generator (device).

    Args:
        generator: The generator, or several (one per device, the same model on each): every
            job goes to the first one that is free.
        history: Where recorded jobs' images go, or None.
        queue_size: The most jobs waiting (the running ones not counted); more are refused.
        start: Start the worker threads now (tests may run jobs by hand with :meth:`run_next`).
    """

    def __init__(
        self,
        generator: Generator | Sequence[Generator],
        *,
        history: History | None = None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        start: bool = True,
    ) -> None:
        generators = list(generator) if isinstance(generator, Sequence) else [generator]
        if not generators:
            raise AnimagineError("a worker needs at least one generator")
        #: The generators, one per device; the first checks requests.
        self.generators = generators
        self.history = history
        self.queue_size = queue_size
        self._pending: collections.deque[Job] = collections.deque()
        self._jobs: collections.OrderedDict[str, Job] = collections.OrderedDict()
        self._running: list[Job] = []
        self._condition = threading.Condition()
        self._closing = False
        self._threads: list[threading.Thread] = []
        self.completed = 0
        if start:
            for index, each in enumerate(generators):
                thread = threading.Thread(
                    target=self._loop, args=(each,), name=f"animagine-worker-{index}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    @property
    def generator(self) -> Generator:
        """The first generator: the one that checks requests."""
        return self.generators[0]

    @generator.setter
    def generator(self, value: Generator) -> None:
        self.generators[0] = value

    # -- queueing ------------------------------------------------------------------------------

    def check(self, options: Sequence[GenerationOptions]) -> tuple[GenerationPlan, ...]:
        """Check runs as :meth:`submit` does, without queueing them: their plans, seeds fixed.

        Raises:
            AnimagineError: the generator's checks (the message names the option).
        """
        plans = []
        for run in options:
            plan = self.generator.check(run)
            if run.seed is None:  # the drawn seed becomes part of the request (the plan's
                # seeds, and the prompts a template drew from them, are already that seed's)
                plan = attrs.evolve(plan, options=attrs.evolve(run, seed=plan.seeds[0]))
            plans.append(plan)
        return tuple(plans)

    def submit(self, options: Sequence[GenerationOptions], *, record: bool = True) -> Job:
        """Check the runs of one request and queue them as one job.

        Raises:
            AnimagineError: a run that does not pass the generator's checks.
            QueueFullError: :attr:`queue_size` jobs are already waiting.
        """
        if not options:
            raise AnimagineError("a job needs at least one run")
        plans = self.check(options)
        job = Job(
            id=secrets.token_hex(8),
            plans=plans,
            record=record and self.history is not None,
            steps_total=sum(_steps_of(plan) for plan in plans),
        )
        with self._condition:
            if self._closing:
                raise QueueFullError("the server is shutting down")
            if len(self._pending) >= self.queue_size:
                raise QueueFullError(
                    f"the generation queue is full ({self.queue_size} waiting); try again later"
                )
            self._pending.append(job)
            self._remember(job)
            self._condition.notify()
        return job

    def _remember(self, job: Job) -> None:
        self._jobs[job.id] = job
        while len(self._jobs) > KEEP_JOBS + self.queue_size + len(self.generators):
            oldest = next(iter(self._jobs.values()))
            if not oldest.finished_state:
                break
            self._jobs.popitem(last=False)

    def job(self, job_id: str) -> Job | None:
        """The job ``job_id`` (queued, running or among the last finished), or None."""
        with self._condition:
            return self._jobs.get(job_id)

    def position(self, job: Job) -> int | None:
        """0 for a running job, 1 for the next one to start..., None for a finished job."""
        with self._condition:
            if job in self._running:
                return 0
            try:
                return self._pending.index(job) + 1
            except ValueError:
                return None

    @property
    def current(self) -> Job | None:
        """The running job that started first, or None."""
        with self._condition:
            return self._running[0] if self._running else None

    @property
    def running(self) -> tuple[Job, ...]:
        """The running jobs, one per busy generator."""
        with self._condition:
            return tuple(self._running)

    @property
    def waiting(self) -> int:
        """How many jobs wait (the running ones not counted)."""
        with self._condition:
            return len(self._pending)

    def interrupt(self, job_id: str | None = None) -> bool:
        """Stop a job: a running one stops at its next step and keeps what it has; a queued
        one is cancelled. Without ``job_id``, every running job. False when there was none."""
        with self._condition:
            targets = [job for job in self._running if job_id is None or job.id == job_id]
            for job in targets:
                job.interrupt_requested = True
            if targets:
                return True
            for job in self._pending:
                if job.id == job_id:
                    self._pending.remove(job)
                    job.state = "cancelled"
                    job.finished = time.time()
                    job._finish()
                    return True
        return False

    def skip(self) -> bool:
        """Skip the run now going of every running job: it stops at its next step and keeps
        what it has, and the job goes on with its next run (A1111's skip). False when nothing
        runs."""
        with self._condition:
            for job in self._running:
                job.skip_requested = True
            return bool(self._running)

    def close(self, timeout: float | None = 30.0) -> None:
        """Cancel the waiting jobs, interrupt the running ones and stop the threads."""
        with self._condition:
            self._closing = True
            while self._pending:
                job = self._pending.popleft()
                job.state = "cancelled"
                job.finished = time.time()
                job._finish()
            for job in self._running:
                job.interrupt_requested = True
            self._condition.notify_all()
        for thread in self._threads:
            thread.join(timeout)

    # -- running -------------------------------------------------------------------------------

    def _loop(self, generator: Generator) -> None:
        while True:
            with self._condition:
                while not self._pending and not self._closing:
                    self._condition.wait()
                if self._closing and not self._pending:
                    return
            self.run_next(generator)

    def run_next(self, generator: Generator | None = None) -> Job | None:
        """Run the next waiting job to its end on ``generator`` (default: the first); the
        worker threads call this."""
        with self._condition:
            if not self._pending:
                return None
            job = self._pending.popleft()
            self._running.append(job)
            job.state = "running"
            job.started = time.time()
            job._monotonic_start = time.monotonic()
        try:
            self._run(job, self.generator if generator is None else generator)
            job.state = "interrupted" if job.interrupt_requested else "done"
        except _Interrupted:
            job.state = "interrupted"
        except Exception as error:  # reported to the client, never lost
            job.state = "failed"
            job.error = _describe(error)
        finally:
            job.finished = time.time()
            with self._condition:
                self._running.remove(job)
                self.completed += 1
            job._finish()
        return job

    def _run(self, job: Job, generator: Generator) -> None:
        callback = _step_callback(job)
        for index, plan in enumerate(job.plans):
            if job.interrupt_requested:
                raise _Interrupted
            job.run = index
            result = generator(plan.options, callback_on_step_end=callback, progress=False)
            job.skip_requested = False  # a skip ends one run only
            for image, parameters in zip(result.images, result.parameters, strict=True):
                data = encode_png(image, parameters)
                job.images.append(data)
                job.parameters.append(parameters)
                if job.record and self.history is not None:
                    job.history_ids.append(self.history.add(data, parameters))


def _step_callback(job: Job) -> Callable[..., Any]:
    def on_step_end(
        pipe: Any, step: int, timestep: Any, callback_kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        job.steps_done += 1
        if job.interrupt_requested or job.skip_requested:
            pipe._interrupt = True  # diffusers' documented way to stop a pass early
        return callback_kwargs

    return on_step_end


def _describe(error: BaseException) -> str:
    if isinstance(error, AnimagineError):
        return str(error)
    return f"{type(error).__name__}: {error}"
