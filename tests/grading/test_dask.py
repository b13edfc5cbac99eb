"""The same jobs on a Dask cluster give the same grade table as the local pool."""

import pytest

from .conftest import LAB, SECRET

distributed = pytest.importorskip("distributed", reason="dask[distributed] is in the 'grading' extra")
SOME = ["ada", "bob", "dee", "gus", "kim", "oli"]
COMPARE = ["student", "lab", "cell", "check", "hidden", "points", "max_points", "status",
           "message", "flags", "model_status", "notebook", "seed"]


def test_a_local_cluster_grades_like_the_pool(course, collected, graded):
    from xenlab.grading import grade
    paths = [collected / s / f"{LAB}.ipynb" for s in SOME]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        t = grade(paths, [course / "labs"], SECRET.encode(), scheduler=client, timeout=20,
                  progress=False)
        workers = set(client.run(lambda: 1))
    assert len(workers) == 2
    pool = graded[graded.student.isin(SOME)].reset_index(drop=True)
    got = t[COMPARE].astype(str).reset_index(drop=True)
    want = pool[COMPARE].astype(str)
    want["points"], got["points"] = pool.points.astype(float).astype(str), t.points.astype(float).astype(str)
    want["max_points"] = pool.max_points.astype(float).astype(str)
    got["max_points"] = t.max_points.astype(float).astype(str)
    want["hidden"] = pool.hidden.astype(str)
    assert got.to_dict("records") == want.to_dict("records")
