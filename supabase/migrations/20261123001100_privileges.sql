-- taskwarden: privileges. Functions are executable by PUBLIC by default in Postgres and a
-- per-schema default privilege cannot take that back, so it is revoked here explicitly.
-- A migration that adds functions must end the same way (a pgTAP test checks every function).

revoke all on all functions in schema taskwarden from public, anon, authenticated;
grant execute on all functions in schema taskwarden to service_role;

revoke all on all tables in schema taskwarden from public, anon, authenticated;
grant select, insert, update, delete on all tables in schema taskwarden to service_role;

revoke all on all sequences in schema taskwarden from public, anon, authenticated;
grant usage, select on all sequences in schema taskwarden to service_role;
