"""No network at run time unless the user names a remote input (issue 13): the default runner never
tries Beam's Prism download. A socket guard records every name lookup and connection the process tries."""

from __future__ import annotations

import socket

from helpers import warc

from corpusmill.pipelines.ccnet import CCNetConfig, run_ccnet

LOOPBACK = ("127.0.0.1", "::1", "localhost", "0.0.0.0", "")


def test_a_stage_run_opens_no_connection_and_resolves_no_name(tmp_path, monkeypatch):
    attempts = []
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect

    def getaddrinfo(host, *args, **kwargs):
        if str(host) not in LOOPBACK:
            attempts.append(("resolve", host))
            raise OSError(f"network disabled in this test: {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if self.family in (socket.AF_INET, socket.AF_INET6) and str(host) not in LOOPBACK:
            attempts.append(("connect", address))
            raise OSError(f"network disabled in this test: {address}")
        return real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    stats = run_ccnet(CCNetConfig(input=[warc("pydocs.warc.gz")], output=str(tmp_path / "out")))
    assert stats[0]["kept"] > 20
    assert attempts == []  # Beam's DirectRunner would have resolved github.com to fetch Prism


def test_the_default_and_direct_runner_are_the_in_process_runner():
    from apache_beam.options.pipeline_options import StandardOptions

    from corpusmill.engine.options import beam_options

    for args in ([], ["--runner", "DirectRunner"], ["--runner=direct"]):
        assert beam_options(args).view_as(StandardOptions).runner == "corpusmill.engine.runner.InProcessRunner"
    assert beam_options(["--runner", "PortableRunner"]).view_as(StandardOptions).runner == "PortableRunner"
