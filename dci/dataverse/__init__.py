"""Dynamics 365 / Dataverse: everything the app reads from and writes to an environment.

`client` is the Web API client (incidents, a case by its ticket, contact names, article titles,
the note on a case, the Portal visits' requests, retries and tokens); `visits` what each visit of a
case's journey becomes as a `dci_portalvisit` activity (pure); `wall` keeps a case's visits on its
timeline in step with its journey; `setup` is `python -m dci dataverse setup` (the plan, pure; the
administrative calls; the command).
"""
