"""Use cases of the groups service, one module per feature: ``directory`` (identity's
accounts), ``groups`` (groups, owners, members, joining), ``access`` (who reaches
which customer), ``feed`` (IWDS and program events), ``invitations``, ``messages``.
Each command changes state, audit rows and outbox events in one transaction."""
