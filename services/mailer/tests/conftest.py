"""The mailer's integration tests: one SMTP sink a module (tests tell their mail apart by a unique address)."""

import pytest

from assent_devtools.devstack.smtp_sink import SmtpSink
from assent_devtools.testing.helpers import free_port


@pytest.fixture(scope="module")
def sink(tmp_path_factory):
    sink = SmtpSink(tmp_path_factory.mktemp("mail"), free_port()).start()
    yield sink
    sink.stop()
