"""`splatup view` from the command line: its options, clear errors, and a real server process that serves the
viewer's page on 127.0.0.1 and stops on Ctrl-C."""

import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from click.testing import CliRunner

from splatup.cli import main


def test_view_help_lists_the_viewer_options():
    r = CliRunner().invoke(main, ["view", "--help"])
    assert r.exit_code == 0, r.output
    for opt in ("--port", "--host", "--up", "--width", "--height", "--method", "--scale", "--auto", "--target-fps",
                "--split", "--background", "--fov"):
        assert opt in r.output
    assert "127.0.0.1" in r.output and "fd-hermite" in r.output


def test_view_errors_name_the_argument(tmp_path, shared_data):
    spot = str(shared_data / "padilla_splats" / "spot" / "spot_10k.splat")
    r = CliRunner().invoke(main, ["view", spot, "--up", "sideways"])
    assert r.exit_code == 2 and "--up" in r.output and "sideways" in r.output
    r = CliRunner().invoke(main, ["view", str(tmp_path / "missing.splat")])
    assert r.exit_code == 2 and "missing.splat" in r.output and "not found" in r.output
    r = CliRunner().invoke(main, ["view", spot, "--scale", "5"])
    assert r.exit_code == 2 and "--scale" in r.output


def test_view_serves_the_page_and_stops_on_ctrl_c(shared_data):
    exe = Path(sys.executable).parent / "splatup"
    spot = shared_data / "padilla_splats" / "spot" / "spot_10k.splat"
    proc = subprocess.Popen([str(exe), "view", str(spot), "--port", "0", "--up", "-y"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        url, lines, deadline = None, [], time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r"splatup view at (http://127\.0\.0\.1:(\d+))", line)
            url = m and m.group(1)
        assert url, "no URL printed:\n" + "".join(lines)
        page = urllib.request.urlopen(url, timeout=30).read().decode("utf-8", "replace")
        assert "<html" in page.lower() and "viser" in page.lower()
        assert "10,000 Gaussians" in "".join(lines)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        port = int(url.rsplit(":", 1)[1])
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
            raise AssertionError(f"port {port} still open after Ctrl-C")
        except OSError:
            pass
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
