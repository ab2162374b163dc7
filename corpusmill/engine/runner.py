"""The runner corpusmill uses when none is named: Beam's in-process runner, without the network.

Beam 2.77's ``DirectRunner`` first tries the Prism runner: it resolves github.com, downloads a Prism
binary, starts it, and falls back to the in-process FnApiRunner only when that fails. corpusmill never
wants that (nothing may download at run time, and Prism is untested here). :class:`InProcessRunner` is
that fallback itself: the FnApiRunner with the run's options (``--direct_running_mode``,
``--direct_num_workers``), set up as the DirectRunner sets it up. Every corpusmill pipeline is a batch
pipeline, which the FnApiRunner runs. ``--runner DirectRunner`` means this runner too; any other named
runner is Beam's.
"""

from __future__ import annotations

from apache_beam.runners.runner import PipelineRunner

NAME = "corpusmill.engine.runner.InProcessRunner"
ALIASES = ("direct", "directrunner")


class InProcessRunner(PipelineRunner):
    def run_pipeline(self, pipeline, options):
        from apache_beam.portability.api import beam_provision_api_pb2
        from apache_beam.runners.portability.fn_api_runner import fn_runner
        from apache_beam.runners.portability.portable_runner import JobServiceHandle

        encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
        provision = fn_runner.ExtendedProvisionInfo(beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded))
        return fn_runner.FnApiRunner(provision_info=provision).run_pipeline(pipeline, options)
