"""The jobs: one module per Snakemake rule, each composing the layers for that rule.

* :mod:`~alems.jobs.fingerprint` (``fingerprint``), :mod:`~alems.jobs.baseline`
  (``baseline``, and the baseline each measurement job subtracts), :mod:`~alems.jobs.run_family`
  (``run_family``: one ``(family, rep)`` with the meter on), :mod:`~alems.jobs.tables`
  (``tables``), :mod:`~alems.jobs.figures` (``figures``), :mod:`~alems.jobs.manifest`
  (``manifest``);
* :mod:`~alems.jobs.standalone`: ``alems run``, the ``run_family`` job outside Snakemake (with
  the null meter for ``--no-energy``);
* shared by them: :mod:`~alems.jobs.preflight` (the LLM must generate before anything is
  measured), :mod:`~alems.jobs.recording` (the meter on, or the null meter) and
  :mod:`~alems.jobs.outputs` (the job's files and its ``run.json`` record).

``workflow/scripts/*.py`` read ``snakemake.input``, ``.params`` and ``.output`` by name and
call one ``*_job`` function; each builds the typed settings once
(:class:`alems.settings.StudySettings`) and passes its sections down. Import from the
modules: this package imports none of them, so ``alems.jobs.outputs`` stays light for
:mod:`alems.session`.
"""
