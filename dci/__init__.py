"""Portal Insights for Dataverse: portal activity before a support case, in Azure Functions."""

__version__ = "0.1.0"
