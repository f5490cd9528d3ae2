"""The dashboard's settings, from ENCLAVE_WEB_* environment variables."""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from webui.auth import SESSION_TTL


class WebSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ENCLAVE_WEB_")

    host: str = "127.0.0.1"
    port: int = 8000
    rpc_url: str = "http://127.0.0.1:8545"
    deployment: Path = Path(".state/deployment.json")
    bridge_database: Path = Path(".state/bridge.sqlite")
    # The bridge's PostgreSQL store, when it has one instead of the SQLite file (the password is in it).
    bridge_store_url: SecretStr = SecretStr("")
    worker_urls: list[str] = []
    gatekeeper_urls: list[str] = []
    # The simulated TEE's attestation authority's public key: the dashboard verifies workers'
    # quotes itself (the private key stays with the processes that make quotes).
    attestation_authority_public_key: Path = Path(".state/attestation-authority.pub")
    # The cluster's TEE backend; every page says SIMULATED plainly when it is the simulated one.
    tee_backend: str = "simulated"
    # The account the dashboard acts with (deploy, pause, try it, rotate): an admin's.
    operator_key: SecretStr = SecretStr("")
    # SHA-256 (hex) of the admin token; the token itself is printed once by `enclave up`.
    admin_token_sha256: str = ""
    require_login_for_reading: bool = False
    # Derives the sessions' CSRF tokens; new at every start (sessions end with the process).
    session_secret: SecretStr = Field(default_factory=lambda: SecretStr(secrets.token_hex(32)))
    # How long an admin session lasts after its login, in seconds (absolute, not sliding).
    session_ttl_seconds: int = Field(default=SESSION_TTL, ge=1)
