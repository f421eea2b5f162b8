"""On the embedded default (tasks in-process) a launch does not prepare inside the request: it
returns with the campaign ``preparing`` and a background thread prepares the messages."""

from __future__ import annotations

import threading

import pytest

from campaigns import lifecycle, services
from campaigns.lifecycle import wait_for_background_preparations
from campaigns.models import CampaignStatus, Message
from tests.campaigns.conftest import make_campaign, person


@pytest.mark.django_db(transaction=True)
def test_a_launch_on_the_embedded_default_prepares_in_the_background(settings, shop):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.CAMPAIGN_PREPARE_IN_BACKGROUND = True
    shop()
    person("ada", first_name="Ada")
    person("ben", first_name="Ben")
    campaign = make_campaign()
    launched = services.launch(campaign)
    assert launched.status == CampaignStatus.PREPARING  # the request got its answer before the work
    wait_for_background_preparations(timeout=60)
    launched.refresh_from_db()
    assert launched.status == CampaignStatus.RUNNING and launched.prepared_at is not None
    assert Message.objects.filter(campaign=campaign).count() == 2


@pytest.mark.django_db(transaction=True)
def test_turned_off_the_launch_starts_no_thread(settings, shop):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.CAMPAIGN_PREPARE_IN_BACKGROUND = False
    shop()
    person("ada", first_name="Ada")
    started = threading.active_count()
    services.launch(make_campaign())
    assert not lifecycle._background and threading.active_count() == started
