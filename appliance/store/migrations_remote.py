"""Schema for phones outside the office, registered after the reports' indexes.

`extensions.secure`: 1 when an extension must register over TLS (its calls
then carry SRTP).  `provisioned_phones`: desk phones that fetch their
configuration from the appliance (appliance.store.provisioning): by MAC
address, the vendor's format, the secret in the file's URL, and the SIP
password the file carries (a provisioned phone needs the password itself,
not its digest; it is made for provisioning and shown nowhere else).
`provision_tokens`: one-time passwords of softphones' QR codes, as hashes.
"""

from __future__ import annotations

from sqlite_utils import Database

from appliance.store.schema import migrations


@migrations()
def m_remote_001_secure_and_provisioning(db: Database) -> None:
    if "secure" not in db["extensions"].columns_dict:
        db["extensions"].add_column("secure", int, not_null_default=0)
    db.execute("create table if not exists provisioned_phones (mac text primary key, extension text not null, "
               "vendor text not null, secret text not null, password text not null, created_at real not null, "
               "fetched_at real)")
    db.execute("create table if not exists provision_tokens (token_hash text primary key, extension text not null, "
               "expires_at real not null)")
