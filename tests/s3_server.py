"""A real S3 wire protocol for the tests: moto's server mode on 127.0.0.1 (one per session),
a fresh bucket per test, and the environment a process needs to archive into it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


@dataclass
class S3Bucket:
    """One bucket of the running server, and a plain boto3 client to look into it."""

    endpoint: str
    name: str
    client: Any
    server: Any

    @property
    def url(self) -> str:
        return f"s3://{self.name}/archive"

    def env(self) -> dict[str, str]:
        """What a process needs to archive into this bucket."""
        return {
            **CREDENTIALS,
            "IMAGEBOT_ARCHIVE_URL": self.url,
            "IMAGEBOT_S3_ENDPOINT": self.endpoint,
        }

    def keys(self) -> list[str]:
        listing = self.client.list_objects_v2(Bucket=self.name)
        return sorted(entry["Key"] for entry in listing.get("Contents", []))

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[Any]:
    """moto's ThreadedMotoServer on a free loopback port, for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> S3Bucket:
    """A fresh bucket, with IMAGEBOT_ARCHIVE_URL, IMAGEBOT_S3_ENDPOINT and AWS_* set."""
    import boto3

    host, port = s3_server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=CREDENTIALS["AWS_REGION"],
    )
    bucket = S3Bucket(endpoint, f"imagebot-{uuid.uuid4().hex[:12]}", client, s3_server)
    client.create_bucket(Bucket=bucket.name)
    for name, value in bucket.env().items():
        monkeypatch.setenv(name, value)
    return bucket
