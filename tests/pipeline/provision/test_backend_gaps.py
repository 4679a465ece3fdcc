"""Operations a backend does not implement are named in the result, never silently dropped."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from comfyfab.cloud import BackendSpec, Cloud
from pipeline.provision import dynamodb
from pipeline.provision.context import Step
from pipeline.provision.names import tag_dict


def _step(fabric_config):
    # No server: the stubber answers every call.
    cloud = Cloud(BackendSpec(kind="localstack", endpoint_url="http://127.0.0.1:9"))
    messages: list[str] = []
    return Step(cloud=cloud, cfg=fabric_config, create=True, progress=messages.append), messages


def _ttl_on(stub, cfg):
    stub.add_response("describe_time_to_live", {"TimeToLiveDescription": {
        "TimeToLiveStatus": "ENABLED", "AttributeName": cfg.jobs.ttl_attribute}})


def test_dynamodb_local_gaps_are_recorded_and_reported(fabric_config):
    step, messages = _step(fabric_config)
    ddb = step.client("dynamodb")
    with Stubber(ddb) as stub:
        _ttl_on(stub, fabric_config)
        stub.add_client_error("update_continuous_backups", "UnknownOperationException", http_status_code=400)
        stub.add_client_error("tag_resource", "UnknownOperationException", http_status_code=400)
        dynamodb._converge(step, "comfyfab-jobs", "arn:aws:dynamodb:us-east-1:1:table/comfyfab-jobs",
                           tag_dict(fabric_config, "jobs"))
        stub.assert_no_pending_responses()
    assert step.unsupported == ["dynamodb:UpdateContinuousBackups comfyfab-jobs: UnknownOperationException",
                                "dynamodb:TagResource comfyfab-jobs: UnknownOperationException"]
    assert len(messages) == 2 and all("does not implement" in m for m in messages)


def test_other_errors_still_fail_provisioning(fabric_config):
    step, _ = _step(fabric_config)
    ddb = step.client("dynamodb")
    with Stubber(ddb) as stub:
        _ttl_on(stub, fabric_config)
        stub.add_client_error("update_continuous_backups", "AccessDeniedException", http_status_code=400)
        with pytest.raises(ClientError, match="AccessDeniedException"):
            dynamodb._converge(step, "comfyfab-jobs", "arn:aws:dynamodb:us-east-1:1:table/comfyfab-jobs",
                               tag_dict(fabric_config, "jobs"))
    assert step.unsupported == []


def test_pitr_is_retried_while_aws_says_backups_are_not_yet_available(fabric_config):
    step, _ = _step(fabric_config)
    ddb = step.client("dynamodb")
    with Stubber(ddb) as stub:
        _ttl_on(stub, fabric_config)
        stub.add_client_error("update_continuous_backups", "ContinuousBackupsUnavailableException")
        stub.add_client_error("update_continuous_backups", "ContinuousBackupsUnavailableException")
        stub.add_response("update_continuous_backups", {"ContinuousBackupsDescription": {
            "ContinuousBackupsStatus": "ENABLED",
            "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "ENABLED"}}})
        stub.add_response("tag_resource", {})
        dynamodb._converge(step, "comfyfab-jobs", "arn:aws:dynamodb:us-east-1:1:table/comfyfab-jobs",
                           tag_dict(fabric_config, "jobs"), retry_wait_s=0)
        stub.assert_no_pending_responses()
    assert step.unsupported == []
