"""Where the lake is: `LAKE_URL` read with the app's storage connection. No delta-rs here: the
settings check and the function index load this module whether or not a lake is configured.

* `az://<container>/<prefix>` — a container of the app's own storage account, reached the way the
  app reaches its tables: the connection string (Azurite locally), or the identity-based
  `AzureWebJobsStorage__*` settings with the app's managed identity.
* `abfss://<container>@<account>.dfs.core.windows.net/<prefix>` — a separate Data Lake Storage
  account, always with the managed identity (its Bicep has shared keys off).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dci.storage.clients import StorageTarget

TABLES = ("interactions", "cases")
STORAGE_SCOPE = "https://storage.azure.com/.default"
# Azurite's well-known development account (public and documented, not a secret).
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
DEV_BLOB = "http://127.0.0.1:10000/devstoreaccount1"

_CONTAINER = r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}"  # the Blob service's container name rule
_PREFIX = r"(?:/(?P<prefix>[A-Za-z0-9._=-]+(?:/[A-Za-z0-9._=-]+)*))?/?"
AZ_URL = re.compile(rf"az://(?P<container>{_CONTAINER}){_PREFIX}")
ABFSS_URL = re.compile(rf"abfss://(?P<container>{_CONTAINER})@(?P<account>[a-z0-9]{{3,24}})\.dfs\.core\.windows\.net"
                       rf"{_PREFIX}")
EXAMPLES = "az://lake/portal or abfss://lake@contosolake.dfs.core.windows.net/portal"


class LakeUrlError(ValueError):
    """LAKE_URL is not one of the two forms; the message shows both."""


def check_url(url: str) -> str:
    """The URL without a trailing slash, or LakeUrlError."""
    match = AZ_URL.fullmatch(url) or ABFSS_URL.fullmatch(url)
    if not match or any(part in (".", "..") for part in (match["prefix"] or "").split("/")):
        raise LakeUrlError(f"{url!r} is not a lake URL like {EXAMPLES} (container names: 3-63 lower-case "
                           "letters, digits and single hyphens)")
    return url.rstrip("/")


@dataclass(frozen=True)
class LakeLocation:
    """The tables' root, the container that holds it and how to authenticate to it."""

    root: str  # e.g. az://lake/portal; the tables are {root}/interactions and {root}/cases
    container: str
    account_url: str  # the Blob endpoint (the container is created through it when missing)
    options: dict[str, str] = field(default_factory=dict)  # object_store options, without a key or token
    account_key: str | None = field(default=None, repr=False)
    storage: StorageTarget | None = field(default=None, repr=False)  # for the managed identity's token

    def table_uri(self, name: str) -> str:
        """Where one table lives."""
        return f"{self.root}/{name}"

    def credential(self) -> Any:
        """What the Blob SDK authenticates with: the account key or the app's token credential."""
        if self.account_key:
            return {"account_name": self.options["azure_storage_account_name"], "account_key": self.account_key}
        assert self.storage is not None
        return self.storage.credential()

    def storage_options(self) -> dict[str, str]:
        """delta-rs's options, with a fresh token when the managed identity is used."""
        if self.account_key:
            return self.options | {"azure_storage_account_key": self.account_key}
        assert self.storage is not None
        token = self.storage.credential().get_token(STORAGE_SCOPE).token
        return self.options | {"bearer_token": token}


def location(url: str, storage: StorageTarget) -> LakeLocation:
    """The location of a checked LAKE_URL, reached through the app's storage settings."""
    url = check_url(url)
    match = ABFSS_URL.fullmatch(url)
    if match:
        account = match["account"]
        return LakeLocation(root=url, container=match["container"], account_url=f"https://{account}.blob.core.windows.net",
                            options={"azure_storage_account_name": account}, storage=storage)
    container = AZ_URL.fullmatch(url)["container"]  # type: ignore[index]  # checked above
    if storage.connection_string:
        return _from_connection_string(url, container, storage.connection_string)
    blob = (storage.blob_uri or "").rstrip("/")
    account = _account_of(blob)
    if not account:
        raise LakeUrlError("LAKE_URL az://… uses the app's storage account: set AzureWebJobsStorage__accountName "
                           "or AzureWebJobsStorage__blobServiceUri")
    options = {"azure_storage_account_name": account, "azure_storage_endpoint": blob}
    return LakeLocation(root=url, container=container, account_url=blob, options=options, storage=storage)


def _account_of(blob_uri: str) -> str | None:
    host = re.match(r"https?://([^/:]+)", blob_uri)
    return host[1].split(".")[0] if host else None


def _from_connection_string(url: str, container: str, connection: str) -> LakeLocation:
    parts = dict(part.split("=", 1) for part in connection.split(";") if "=" in part)
    if parts.get("UseDevelopmentStorage", "").lower() == "true":
        parts = {"AccountName": DEV_ACCOUNT, "AccountKey": DEV_KEY, "BlobEndpoint": DEV_BLOB}
    account, key = parts.get("AccountName"), parts.get("AccountKey")
    if not (account and key):
        raise LakeUrlError("LAKE_URL az://… needs the storage connection string's AccountName and AccountKey "
                           "(or an identity-based AzureWebJobsStorage)")
    protocol = parts.get("DefaultEndpointsProtocol", "https")
    suffix = parts.get("EndpointSuffix", "core.windows.net")
    blob = parts.get("BlobEndpoint", f"{protocol}://{account}.blob.{suffix}").rstrip("/")
    options = {"azure_storage_account_name": account, "azure_storage_endpoint": blob}
    if blob.startswith("http://"):
        options["azure_allow_http"] = "true"
    return LakeLocation(root=url, container=container, account_url=blob, options=options, account_key=key)
