"""`./dev run` trusts its own local backend's issuer: a job run through it is reported as
a local run, never as unverified nor as a TEE run."""

from __future__ import annotations

from tests.test_product_command import poll, product  # noqa: F401 - product is a fixture

LOCAL_RUN = "local run, no hardware TEE"


def test_dev_run_reports_its_jobs_as_local_runs(product):  # noqa: F811 - the fixture
    _process, session, base, _notebooks, _port = product
    poll(lambda: session.get(f"{base}/manatee/config").ok, 60, "JupyterLab")
    submitted = session.post(
        f"{base}/manatee/jobs",
        json={"path": "getting-started.ipynb", "filename": "getting-started.ipynb"},
    ).json()
    assert submitted["code"] == 0, submitted

    def finished():
        jobs = session.get(f"{base}/manatee/jobs").json()["jobs"]
        job = next(j for j in jobs if j["uuid"] == submitted["uuid"])
        return job if job["job_status"] not in (0, 1, 3, 4) else None

    job = poll(finished, 90, "the job to end")
    saved = session.post(f"{base}/manatee/output", json={"id": job["id"]}).json()
    assert saved["attestation"]["verdict"] == LOCAL_RUN, saved
    attestation = session.get(f"{base}/manatee/attestation", params={"id": job["id"]}).json()
    assert attestation["verification"]["verdict"] == LOCAL_RUN, attestation["verification"]
