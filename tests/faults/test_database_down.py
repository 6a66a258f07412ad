"""PostgreSQL unreachable under QoS 1 load (a proxy between `devicetrust serve` and the
database is cut, then restored): the gateway acknowledges nothing it could not commit, tells
the devices why (a DISCONNECT or a refused CONNECT with a reason code, never a plain PUBACK),
and recovers by itself once the database is back; nothing acknowledged is lost."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tests.faults.fleet import Device, drained, provisioned_fleet, stored, until
from tests.faults.probe import Probe
from tests.faults.proxy import CuttableProxy
from tests.faults.serve import killable_platform

MESSAGES = 60
# Server unavailable, Server busy, Unspecified error (a refused CONNECT or a DISCONNECT):
# what the gateway may say while the database is away; never Not authorized / Bad credentials.
OUTAGE_REASONS = {0x80, 0x88, 0x89}


def _through(proxy: CuttableProxy, url: str) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.netloc.rsplit('@', 1)[0]}@127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _all_acknowledged_stored(url: str, devices: list[Device], probe_pid: str,
                             probe: Probe) -> None:
    for device in devices:
        assert device.client is not None
        acknowledged = set(device.published[: len(device.published) - device.client.pending])
        assert acknowledged <= set(stored(url, device.physical_id))
    assert probe.acknowledged() <= set(stored(url, probe_pid))


def test_database_outage_under_load(tmp_path: Path, fresh_pg_url: str) -> None:
    upstream = urlsplit(fresh_pg_url)
    proxy = CuttableProxy((upstream.hostname or "127.0.0.1", upstream.port or 5432))
    try:
        with killable_platform(tmp_path, _through(proxy, fresh_pg_url)) as serve:
            platform = serve.platform
            *devices, probe_device = provisioned_fleet(platform, tmp_path, 3)
            probe = Probe(platform, probe_device.data_dir, probe_device.keystore)
            for device in devices:
                device.open(platform)
                device.publish(MESSAGES)
            assert probe.connect()
            before = probe.publish(10)
            assert until(lambda: drained(devices))
            assert until(lambda: probe.acknowledged() == set(before))

            proxy.cut()
            for device in devices:
                device.publish(MESSAGES)  # while the database is away
            during = probe.publish(10)
            # the gateway drops the probe's session with a reason instead of acknowledging
            assert until(lambda: not probe.connected)
            assert set(probe.disconnects) <= OUTAGE_REASONS, probe.disconnects
            assert not set(during) & set(probe.acks()), "a PUBACK for an uncommitted message"
            # a new CONNECT is refused cleanly while the database is away
            assert not probe.connect()
            assert set(probe.refusals) <= OUTAGE_REASONS and probe.refusals, probe.errors
            _all_acknowledged_stored(fresh_pg_url, devices, probe_device.physical_id, probe)

            proxy.restore()
            began = time.monotonic()
            assert until(probe.connect)
            after = probe.publish(5)
            redo = probe.publish(again=during)
            assert until(lambda: probe.acknowledged() >= set(after) | set(redo))
            assert until(lambda: drained(devices))
            recovery = time.monotonic() - began
            _all_acknowledged_stored(fresh_pg_url, devices, probe_device.physical_id, probe)
            for device in devices:
                assert sorted(stored(fresh_pg_url, device.physical_id)) == sorted(
                    device.published)
                device.close()
            probe.close()
            probe_stored = stored(fresh_pg_url, probe_device.physical_id)
            assert sorted(probe_stored) == sorted(before + during + after)
            print(f"\ndatabase outage: {len(devices)} devices, "
                  f"{sum(len(d.published) for d in devices)} messages stored exactly once; "
                  f"probe disconnects {[hex(r) for r in probe.disconnects]}, refused CONNECTs "
                  f"{[hex(r) for r in probe.refusals]}; all acknowledged {recovery:.1f} s after the database came back")
    finally:
        proxy.close()

