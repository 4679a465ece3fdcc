"""Compliance: the PHI ingestion gate and a scanner that proves a deployed fabric is configured as claimed.

* :mod:`compliance.phi` -- the PHI gate the router runs on every job (``scan(payload) -> list[Finding]``).
* :mod:`compliance.collect` -- read an account once, through the shared ``Cloud``, into frozen models.
* :mod:`compliance.checks` -- one pure function per check, its metadata JSON beside it.
* ``compliance/frameworks/*.json`` -- SOC2, HIPAA 164.312 and the architecture's own controls, as data.
* :mod:`compliance.scan` -- collect, evaluate, roll up to controls; :mod:`compliance.report` writes it down.
* ``compliance/BACKENDS.md`` -- which backend can prove which invariant.
"""
