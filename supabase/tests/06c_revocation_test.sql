-- An operator's take-back (requeue_task, cancel_task) of a running task revokes its claim at
-- once, but the task is handed out again only once the old run cannot still be going: its
-- holder handed it back, died, or its old lease ran out. Claims are told apart by token.
begin;
select no_plan();
update taskwarden.settings set value = '0' where key = 'retry_base_seconds';

-- Revocation: an operator's requeue refuses the holder at once, but the task is handed out again
-- only when the holder handed the claim back, died, or its old lease ran out.
select taskwarden.enqueue_task('revoke');
select id as v1, lease_token as vtok1 from taskwarden.claim_tasks('rev#1', array['revoke'], lease_seconds => 600) \gset
select 1 from taskwarden.upsert_worker_heartbeat('rev#1', 'revoke', 'processing', held_task_ids => array[:v1]::bigint[],
                                                 held_lease_tokens => array[:'vtok1']::uuid[]);
select results_eq(format($$select status, owner_id, lease_token, revoked_owner_id, revoked_lease_token, revoked_until > now() from taskwarden.requeue_task(%s)$$, :v1),
                  format($$values ('queued', null::text, null::uuid, 'rev#1', %L::uuid, true)$$, :'vtok1'),
                  'requeue_task of a running task revokes its claim and remembers it');
select throws_ok(format($$select taskwarden.renew_task_lease(%s, %L)$$, :v1, :'vtok1'), 'TW001',
                 format('lease lost on task %s: an operator took it back (it is now queued)', :v1), 'the holder''s renewal is refused at once');
select is((select count(*)::int from taskwarden.claim_tasks('other#1', array['revoke'])), 0,
          'nobody claims it while the holder is alive and its old lease runs');
select results_eq(format($$select renewed_task_ids, lost_task_ids, lost_lease_tokens from taskwarden.upsert_worker_heartbeat('rev#1', 'revoke', 'processing',
                            held_task_ids => array[%s]::bigint[], held_lease_tokens => array[%L]::uuid[])$$, :v1, :'vtok1'),
                  format($$values ('{}'::bigint[], array[%s]::bigint[], array[%L]::uuid[])$$, :v1, :'vtok1'),
                  'the holder''s heartbeat is told (id, token) is lost');
select is((select count(*)::int from taskwarden.claim_tasks('other#1', array['revoke'])), 0, 'still not claimable while the holder lists it');
select results_eq($$select lost_task_ids, handed_back_task_ids from taskwarden.upsert_worker_heartbeat('rev#1', 'revoke', 'idle',
                      held_task_ids => '{}', held_lease_tokens => '{}')$$,
                  $$values ('{}'::bigint[], '{}'::bigint[])$$, 'the holder''s handler settled: a heartbeat without the claim hands it back');
select is((select revoked_owner_id from taskwarden.tasks where id = :v1), null, 'which clears the revocation');

-- The same worker claims it again: two claims of one task, told apart by their tokens.
select lease_token as vtok2 from taskwarden.claim_tasks('rev#1', array['revoke']) \gset
select results_eq(format($$select renewed_task_ids, lost_task_ids, lost_lease_tokens from taskwarden.upsert_worker_heartbeat('rev#1', 'revoke', 'processing',
                            held_task_ids => array[%s, %s]::bigint[], held_lease_tokens => array[%L, %L]::uuid[])$$, :v1, :v1, :'vtok1', :'vtok2'),
                  format($$values (array[%s]::bigint[], array[%s]::bigint[], array[%L]::uuid[])$$, :v1, :v1, :'vtok1'),
                  're-claimed by the same worker: the new claim is renewed, the old one is still reported lost');
select throws_ok(format($$select taskwarden.complete_task(%s, %L)$$, :v1, :'vtok1'), 'TW001', null, 'and the old claim''s result is refused');

-- The old lease running out, or the holder's death, also makes a revoked task claimable.
select taskwarden.enqueue_task('revoke-expiry');
select id as x1 from taskwarden.claim_tasks('rev#2', array['revoke-expiry'], lease_seconds => 60) \gset
select 1 from taskwarden.requeue_task(:x1);
select is((select count(*)::int from taskwarden.claim_tasks('other#1', array['revoke-expiry'])), 0, 'not claimable before the old lease ends');
update taskwarden.tasks set revoked_until = now() - interval '1 second' where id = :x1;
select is((select owner_id from taskwarden.claim_tasks('other#1', array['revoke-expiry'])), 'other#1', 'claimable once the old lease would have expired');
select is((select revoked_owner_id from taskwarden.tasks where id = :x1), null, 'the claim clears the old revocation');

select taskwarden.enqueue_task('revoke-death');
select 1 from taskwarden.upsert_worker_heartbeat('rev#3', 'revoke', 'processing');
select id as d1 from taskwarden.claim_tasks('rev#3', array['revoke-death'], lease_seconds => 3600) \gset
select 1 from taskwarden.requeue_task(:d1);
select is((select count(*)::int from taskwarden.claim_tasks('other#1', array['revoke-death'])), 0, 'not claimable while the holder beats');
update taskwarden.worker_heartbeats set last_heartbeat_at = now() - interval '1 day' where worker_id = 'rev#3';
select is((select owner_id from taskwarden.claim_tasks('other#1', array['revoke-death'])), 'other#1', 'claimable once the holder is dead');

-- A cancel revokes too, and a requeue of the cancelled task waits for the same handback.
select taskwarden.enqueue_task('revoke-cancel');
select 1 from taskwarden.upsert_worker_heartbeat('rev#4', 'revoke', 'processing');
select id as c1, lease_token as ctok from taskwarden.claim_tasks('rev#4', array['revoke-cancel']) \gset
select results_eq(format($$select status, revoked_lease_token from taskwarden.cancel_task(%s)$$, :c1),
                  format($$values ('cancelled', %L::uuid)$$, :'ctok'), 'cancel_task of a running task revokes its claim');
select is((taskwarden.requeue_task(:c1)).status, 'queued', 'the cancelled task is requeued');
select is((select count(*)::int from taskwarden.claim_tasks('other#1', array['revoke-cancel'])), 0, 'but not handed out while the cancelled claim may run');
select is((taskwarden.stop_worker('rev#4')), 0, 'its holder stops (nothing running to release)');
select is((select owner_id from taskwarden.claim_tasks('other#1', array['revoke-cancel'])), 'other#1', 'a stopped holder has settled: claimable');

-- The old heartbeat form (no tokens) keeps working, by owner.
select taskwarden.enqueue_task('old-form');
select id as o1 from taskwarden.claim_tasks('old#1', array['old-form']) \gset
select results_eq(format($$select renewed_task_ids, lost_task_ids, lost_lease_tokens, handed_back_task_ids
                           from taskwarden.upsert_worker_heartbeat('old#1', 'old', 'processing', held_task_ids => array[%s, 999999]::bigint[])$$, :o1),
                  format($$values (array[%s]::bigint[], array[999999]::bigint[], array[null]::uuid[], '{}'::bigint[])$$, :o1),
                  'without tokens: renewed by owner, lost ids without tokens, nothing handed back');

select * from finish();
rollback;
