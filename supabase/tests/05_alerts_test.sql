-- Alert de-duplication: one alert per problem and channel, a recovery once, failed channels retried.
begin;
select no_plan();

select 1 from taskwarden.upsert_worker_heartbeat('mail-1#a', 'mail', 'processing', current_task => 'send 42');
update taskwarden.worker_heartbeats set last_heartbeat_at = now() - interval '10 minutes';
select results_eq($$select channel, kind, subject, event from taskwarden.sync_alerts(array['email', 'webhook'])$$,
                  $$values ('email', 'dead_worker', 'mail-1#a', 'open'), ('webhook', 'dead_worker', 'mail-1#a', 'open')$$,
                  'a dead worker opens one alert per channel');
select is((select details ->> 'current_task' from taskwarden.alerts limit 1), 'send 42', 'with what it was doing');
select id as email_alert from taskwarden.alerts where channel = 'email' \gset
select id as webhook_alert from taskwarden.alerts where channel = 'webhook' \gset
select is((select count(*)::int from taskwarden.sync_alerts(array['email', 'webhook'])), 0,
          'a second caller (another reaper) is offered nothing while the first delivers');
select is(taskwarden.mark_alerts_sent(array[:email_alert]::bigint[], 'open'), 1, 'the email channel delivered it');
select is(taskwarden.mark_alerts_sent(array[:webhook_alert]::bigint[], 'failed'), 1, 'the webhook channel failed');
select results_eq($$select channel, event from taskwarden.sync_alerts(array['email', 'webhook'])$$,
                  $$values ('webhook', 'open')$$, 'the next call offers only what was not delivered (the failed webhook)');
update taskwarden.alerts set delivering_until = now() - interval '1 second' where id = :webhook_alert;
select results_eq($$select channel, event from taskwarden.sync_alerts(array['email', 'webhook'])$$,
                  $$values ('webhook', 'open')$$, 'a delivery whose caller died is offered again when its lease ends');
select is((select count(*)::int from taskwarden.alerts), 2, 'no duplicate episode is opened');

select 1 from taskwarden.upsert_worker_heartbeat('mail-1#a', 'mail', 'idle');
select results_eq($$select channel, event from taskwarden.sync_alerts(array['email', 'webhook'])$$,
                  $$values ('email', 'resolved')$$, 'the worker came back: a recovery for the channel that heard of it');
select taskwarden.mark_alerts_sent(array[:email_alert]::bigint[], 'resolved');
select is((select count(*)::int from taskwarden.sync_alerts(array['email', 'webhook'])), 0, 'then silence');

-- a stale run
select id as run from taskwarden.create_run('stuck') \gset
select taskwarden.start_run(:'run');
update taskwarden.runs set started_at = now() - interval '30 hours' where id = :'run';
select results_eq($$select kind, event from taskwarden.sync_alerts(array['email'])$$,
                  $$values ('stale_run', 'open')$$, 'a stale run opens an alert');

select throws_ok($$select * from taskwarden.sync_alerts('{}')$$, 'TW002', null, 'no channels is refused');
select throws_ok($$select taskwarden.mark_alerts_sent(array[1]::bigint[], 'closed')$$, 'TW002', null, 'an unknown event is refused');

select * from finish();
rollback;
