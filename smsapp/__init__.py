"""smsapp: self-hosted, multi-tenant SMS marketing with its compliance and spend guards."""

__version__ = "0.1.0"
