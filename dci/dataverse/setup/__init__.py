"""Setting a Dataverse environment up for the app: `python -m dci dataverse setup`."""
