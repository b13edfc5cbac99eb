"""``xenlab grade``: many submissions, each in fresh processes, in parallel.

A submission is ``.../STUDENT/LAB.ipynb`` (the layout ``xenlab assign`` writes
and a collection keeps): the folder names the student, the file name the lab.
For each one the client (this process, which holds the course secret) derives
the seed and makes a job (:func:`xenlab.grading.job.grade_submission`), and
runs the jobs on a local process pool or, with ``scheduler``, on a Dask
cluster — the same function either way.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .job import grade_submission
from .labfile import read_lab
from .roster import RosterError, check_id
from .seeds import derive_seed


def find_labs(labs) -> dict:
    """{lab name: path} from notebook paths and folders of notebooks (a folder's
    exploration notebooks, ``9x_*``, are not graded and are left out)."""
    from ..tools.nbrun import is_exploration
    out = {}
    for item in labs:
        p = Path(item)
        paths = sorted(q for q in p.glob("*.ipynb") if not is_exploration(q)) \
            if p.is_dir() else [p]
        if not paths or not all(q.is_file() for q in paths):
            raise FileNotFoundError(f"no lab notebooks at {str(p)!r}")
        for q in paths:
            out[q.stem] = q
    return out


def make_jobs(submissions, labs: dict, secret: bytes, *, timeout: float = 600,
              rerun: bool = True, env=None) -> list[dict]:
    """One job per submission path (see the module docstring for the layout)."""
    import nbformat
    sources, jobs = {}, []
    for path in submissions:
        path = Path(path)
        lab_name = path.stem
        try:
            student = check_id(path.parent.name, f"the folder of {path}")
        except RosterError as e:
            raise ValueError(f"{e}; submissions are STUDENT/LAB.ipynb") from None
        if lab_name not in labs:
            raise ValueError(f"{path}: no lab named {lab_name!r} among "
                             f"{', '.join(sorted(labs)) or 'the labs given'} (the file name "
                             "must be the lab's, as xenlab assign wrote it)")
        if lab_name not in sources:
            sources[lab_name] = nbformat.read(labs[lab_name], as_version=4)
            read_lab(sources[lab_name], lab_name)          # a malformed lab fails here, once
        job = {"student": student, "lab": lab_name, "path": str(path),
               "seed": derive_seed(secret, student, lab_name), "source": sources[lab_name],
               "timeout": timeout, "rerun": rerun, "env": env}
        try:
            job["submission"] = nbformat.read(path, as_version=4)
        except Exception as e:
            job["submission"], job["error"] = None, f"cannot read {path}: {type(e).__name__}: {e}"
        jobs.append(job)
    return jobs


def _safe(job):
    """grade_submission, with any grader bug turned into rows rather than a lost batch."""
    try:
        return grade_submission(job)
    except Exception as e:
        import traceback
        job = dict(job, submission=None, error=f"grader error: {type(e).__name__}: {e}")
        try:
            res = grade_submission(job)
        except Exception:
            res = {"student": job["student"], "lab": job["lab"], "rows": [], "flags": []}
        res["traceback"] = traceback.format_exc()[-3000:]
        return res


def run_jobs(jobs, *, workers: int | None = None, scheduler=None, progress: bool = True):
    """Results of ``jobs`` in submission order: on a local process pool, or on the Dask
    cluster ``scheduler`` ("tcp://HOST:PORT" or a ``distributed.Client``)."""
    from tqdm.auto import tqdm
    bar = tqdm(total=len(jobs), desc="grading", unit="nb", file=sys.stderr,
               disable=not progress)
    results = [None] * len(jobs)
    try:
        if scheduler is not None:
            from distributed import Client, as_completed
            client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
            try:
                futures = client.map(_safe, jobs, pure=False)
                index = {f.key: i for i, f in enumerate(futures)}
                for fut in as_completed(futures):
                    results[index[fut.key]] = fut.result()
                    bar.update()
            finally:
                if client is not scheduler:
                    client.close()
        else:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor, as_completed
            with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
                futures = {pool.submit(_safe, j): i for i, j in enumerate(jobs)}
                for fut in as_completed(futures):
                    results[futures[fut]] = fut.result()
                    bar.update()
    finally:
        bar.close()
    return results


def grade(submissions, labs, secret: bytes, *, out=None, feedback_dir=None,
          workers: int | None = None, scheduler=None, timeout: float = 600,
          rerun: bool = True, progress: bool = True, env=None):
    """Grade ``submissions`` against ``labs`` (paths or folders); returns the grade
    table (a DataFrame) and, with ``out``, writes grades.csv and its companions."""
    from .report import table, write_outputs
    jobs = make_jobs(submissions, find_labs(labs), secret, timeout=timeout, rerun=rerun,
                     env=env)
    results = run_jobs(jobs, workers=workers, scheduler=scheduler, progress=progress)
    if out is not None:
        write_outputs(results, out, feedback_dir)
    t = table(results)
    t.attrs["results"] = results
    return t
