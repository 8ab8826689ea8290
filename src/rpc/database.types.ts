export type Json = string | number | boolean | null | { [key: string]: Json | undefined } | Json[]

export type Database = {
  
  "taskwarden": {
          Tables: {
            "alerts": {
                  Row: {
                    "alert_key": string,"channel": string,"delivering_until": string | null,"details": NonNullable<Json>,"id": number,"kind": string,"open_sent_at": string | null,"opened_at": string,"resolved_at": string | null,"resolved_sent_at": string | null,"subject": string
                  }
                  ComputedFields: never
                  Insert: {
                    "alert_key": string,"channel": string,"delivering_until"?: string | null,"details": NonNullable<Json>,"id"?: never,"kind": string,"open_sent_at"?: string | null,"opened_at"?: string,"resolved_at"?: string | null,"resolved_sent_at"?: string | null,"subject": string
                  }
                  Update: {
                    "alert_key"?: string,"channel"?: string,"delivering_until"?: string | null,"details"?: NonNullable<Json>,"id"?: never,"kind"?: string,"open_sent_at"?: string | null,"opened_at"?: string,"resolved_at"?: string | null,"resolved_sent_at"?: string | null,"subject"?: string
                  }
                  Relationships: [
                    
                  ]
                },"reaper_runs": {
                  Row: {
                    "dry_run": boolean,"duration_ms": number | null,"failed": number,"finished_at": string | null,"id": number,"requeued": number,"skipped": boolean,"source": string,"stale_runs_failed": number,"started_at": string,"summary": NonNullable<Json>,"workers_deleted": number
                  }
                  ComputedFields: never
                  Insert: {
                    "dry_run"?: boolean,"duration_ms"?: number | null,"failed"?: number,"finished_at"?: string | null,"id"?: never,"requeued"?: number,"skipped"?: boolean,"source": string,"stale_runs_failed"?: number,"started_at"?: string,"summary"?: NonNullable<Json>,"workers_deleted"?: number
                  }
                  Update: {
                    "dry_run"?: boolean,"duration_ms"?: number | null,"failed"?: number,"finished_at"?: string | null,"id"?: never,"requeued"?: number,"skipped"?: boolean,"source"?: string,"stale_runs_failed"?: number,"started_at"?: string,"summary"?: NonNullable<Json>,"workers_deleted"?: number
                  }
                  Relationships: [
                    
                  ]
                },"runs": {
                  Row: {
                    "completed_at": string | null,"created_at": string,"error": string | null,"id": string,"metadata": NonNullable<Json>,"name": string,"started_at": string | null,"status": string,"updated_at": string
                  }
                  ComputedFields: never
                  Insert: {
                    "completed_at"?: string | null,"created_at"?: string,"error"?: string | null,"id"?: string,"metadata"?: NonNullable<Json>,"name": string,"started_at"?: string | null,"status"?: string,"updated_at"?: string
                  }
                  Update: {
                    "completed_at"?: string | null,"created_at"?: string,"error"?: string | null,"id"?: string,"metadata"?: NonNullable<Json>,"name"?: string,"started_at"?: string | null,"status"?: string,"updated_at"?: string
                  }
                  Relationships: [
                    
                  ]
                },"settings": {
                  Row: {
                    "description": string,"key": string,"max_value": number | null,"min_value": number | null,"updated_at": string,"value": NonNullable<Json>,"value_type": string
                  }
                  ComputedFields: never
                  Insert: {
                    "description": string,"key": string,"max_value"?: number | null,"min_value"?: number | null,"updated_at"?: string,"value": NonNullable<Json>,"value_type": string
                  }
                  Update: {
                    "description"?: string,"key"?: string,"max_value"?: number | null,"min_value"?: number | null,"updated_at"?: string,"value"?: NonNullable<Json>,"value_type"?: string
                  }
                  Relationships: [
                    
                  ]
                },"task_activity": {
                  Row: {
                    "bucket_start": string,"claimed": number,"completed": number,"failed": number,"requeued": number
                  }
                  ComputedFields: never
                  Insert: {
                    "bucket_start": string,"claimed"?: number,"completed"?: number,"failed"?: number,"requeued"?: number
                  }
                  Update: {
                    "bucket_start"?: string,"claimed"?: number,"completed"?: number,"failed"?: number,"requeued"?: number
                  }
                  Relationships: [
                    
                  ]
                },"task_events": {
                  Row: {
                    "actor": string | null,"attempt": number | null,"created_at": string,"details": Json | null,"error": string | null,"event": string,"id": number,"reason": string | null,"run_id": string | null,"task_id": number,"worker_id": string | null
                  }
                  ComputedFields: never
                  Insert: {
                    "actor"?: string | null,"attempt"?: number | null,"created_at"?: string,"details"?: Json | null,"error"?: string | null,"event": string,"id"?: never,"reason"?: string | null,"run_id"?: string | null,"task_id": number,"worker_id"?: string | null
                  }
                  Update: {
                    "actor"?: string | null,"attempt"?: number | null,"created_at"?: string,"details"?: Json | null,"error"?: string | null,"event"?: string,"id"?: never,"reason"?: string | null,"run_id"?: string | null,"task_id"?: number,"worker_id"?: string | null
                  }
                  Relationships: [
                    {
      foreignKeyName: "task_events_task_id_fkey"
      columns: ["task_id"]
isOneToOne: false
      referencedRelation: "tasks"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "task_events_task_id_fkey"
      columns: ["task_id"]
isOneToOne: false
      referencedRelation: "v_stale_running_tasks"
      referencedColumns: ["task_id"]
    }
                  ]
                },"tasks": {
                  Row: {
                    "attempts": number,"completed_at": string | null,"crash_count": number,"created_at": string,"errors": NonNullable<Json>,"id": number,"last_error": string | null,"last_heartbeat": string | null,"lease_expires_at": string | null,"lease_seconds": number | null,"lease_token": string | null,"max_attempts": number,"owner_id": string | null,"payload": NonNullable<Json>,"priority": number,"result": Json | null,"revoked_lease_token": string | null,"revoked_owner_id": string | null,"revoked_until": string | null,"run_at": string,"run_id": string | null,"started_at": string | null,"status": string,"task_type": string,"timeout_seconds": number | null,"updated_at": string
                  }
                  ComputedFields: never
                  Insert: {
                    "attempts"?: number,"completed_at"?: string | null,"crash_count"?: number,"created_at"?: string,"errors"?: NonNullable<Json>,"id"?: never,"last_error"?: string | null,"last_heartbeat"?: string | null,"lease_expires_at"?: string | null,"lease_seconds"?: number | null,"lease_token"?: string | null,"max_attempts"?: number,"owner_id"?: string | null,"payload"?: NonNullable<Json>,"priority"?: number,"result"?: Json | null,"revoked_lease_token"?: string | null,"revoked_owner_id"?: string | null,"revoked_until"?: string | null,"run_at"?: string,"run_id"?: string | null,"started_at"?: string | null,"status"?: string,"task_type": string,"timeout_seconds"?: number | null,"updated_at"?: string
                  }
                  Update: {
                    "attempts"?: number,"completed_at"?: string | null,"crash_count"?: number,"created_at"?: string,"errors"?: NonNullable<Json>,"id"?: never,"last_error"?: string | null,"last_heartbeat"?: string | null,"lease_expires_at"?: string | null,"lease_seconds"?: number | null,"lease_token"?: string | null,"max_attempts"?: number,"owner_id"?: string | null,"payload"?: NonNullable<Json>,"priority"?: number,"result"?: Json | null,"revoked_lease_token"?: string | null,"revoked_owner_id"?: string | null,"revoked_until"?: string | null,"run_at"?: string,"run_id"?: string | null,"started_at"?: string | null,"status"?: string,"task_type"?: string,"timeout_seconds"?: number | null,"updated_at"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "tasks_run_id_fkey"
      columns: ["run_id"]
isOneToOne: false
      referencedRelation: "runs"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "tasks_run_id_fkey"
      columns: ["run_id"]
isOneToOne: false
      referencedRelation: "v_run_progress"
      referencedColumns: ["run_id"]
    }
                  ]
                },"worker_heartbeats": {
                  Row: {
                    "beats": number,"current_run_id": string | null,"current_task": string | null,"host": string | null,"last_heartbeat_at": string,"lease_expires_at": string | null,"metadata": NonNullable<Json>,"pid": number | null,"run_filter_id": string | null,"started_at": string,"status": string,"stop_requested_at": string | null,"stopped_at": string | null,"worker_id": string,"worker_type": string
                  }
                  ComputedFields: never
                  Insert: {
                    "beats"?: number,"current_run_id"?: string | null,"current_task"?: string | null,"host"?: string | null,"last_heartbeat_at"?: string,"lease_expires_at"?: string | null,"metadata"?: NonNullable<Json>,"pid"?: number | null,"run_filter_id"?: string | null,"started_at"?: string,"status"?: string,"stop_requested_at"?: string | null,"stopped_at"?: string | null,"worker_id": string,"worker_type": string
                  }
                  Update: {
                    "beats"?: number,"current_run_id"?: string | null,"current_task"?: string | null,"host"?: string | null,"last_heartbeat_at"?: string,"lease_expires_at"?: string | null,"metadata"?: NonNullable<Json>,"pid"?: number | null,"run_filter_id"?: string | null,"started_at"?: string,"status"?: string,"stop_requested_at"?: string | null,"stopped_at"?: string | null,"worker_id"?: string,"worker_type"?: string
                  }
                  Relationships: [
                    
                  ]
                }
          }
          Views: {
            "v_active_workers": {
                  Row: {
                    "current_run_id": string | null,"current_task": string | null,"held_tasks": number | null,"host": string | null,"last_heartbeat_at": string,"pid": number | null,"run_filter_id": string | null,"seconds_since_heartbeat": number | null,"started_at": string,"status": string,"stop_requested_at": string | null,"worker_id": string,"worker_type": string
                  }
                  ComputedFields: never
                  Relationships: [
                    
                  ]
                },"v_dead_workers": {
                  Row: {
                    "current_run_id": string | null,"current_task": string | null,"held_tasks": number | null,"host": string | null,"last_heartbeat_at": string,"pid": number | null,"run_filter_id": string | null,"seconds_since_heartbeat": number | null,"started_at": string,"status": string,"worker_id": string,"worker_type": string
                  }
                  ComputedFields: never
                  Relationships: [
                    
                  ]
                },"v_run_progress": {
                  Row: {
                    "completed_at": string | null,"created_at": string,"error": string | null,"last_progress_at": string | null,"name": string,"percent_done": number | null,"run_id": string,"started_at": string | null,"status": string,"tasks_cancelled": number | null,"tasks_completed": number | null,"tasks_failed": number | null,"tasks_queued": number | null,"tasks_running": number | null,"tasks_total": number | null
                  }
                  ComputedFields: never
                  Relationships: [
                    
                  ]
                },"v_stale_running_tasks": {
                  Row: {
                    "attempts": number,"last_seen_at": string | null,"lease_expires_at": string | null,"max_attempts": number,"owner_id": string | null,"run_id": string | null,"seconds_since_heartbeat": number | null,"stale_reason": string | null,"started_at": string | null,"task_id": number,"task_type": string
                  }
                  ComputedFields: never
                  Relationships: [
                    {
      foreignKeyName: "tasks_run_id_fkey"
      columns: ["run_id"]
isOneToOne: false
      referencedRelation: "runs"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "tasks_run_id_fkey"
      columns: ["run_id"]
isOneToOne: false
      referencedRelation: "v_run_progress"
      referencedColumns: ["run_id"]
    }
                  ]
                },"v_task_status_counts": {
                  Row: {
                    "oldest_created_at": string | null,"status": string,"task_type": string,"tasks": number | null
                  }
                  ComputedFields: never
                  Relationships: [
                    
                  ]
                }
          }
          Functions: {
            "_activity_grain":
{ Args: Record<PropertyKey, never>; Returns: string
                           },
"_cancel_run_tasks":
{ Args: { "p_reason": string,"p_run_id": string }; Returns: number
                           },
"_cancel_tasks":
{ Args: { "p_actor": string,"p_ids": (number)[],"p_reason": string }; Returns: number
                           },
"_check_fence_args":
{ Args: { "p_lease_token": string,"p_task_id": number }; Returns: undefined
                           },
"_check_json":
{ Args: { "p_name": string,"p_value": Json }; Returns: undefined
                           },
"_check_jsons":
{ Args: { "p_name": string,"p_values": (Json)[] }; Returns: undefined
                           },
"_check_range":
{ Args: { "p_max": number,"p_min": number,"p_name": string,"p_value": number }; Returns: undefined
                           },
"_check_run_accepts_tasks":
{ Args: { "p_run_id": string }; Returns: undefined
                           },
"_check_text":
{ Args: { "p_max_length"?: number,"p_name": string,"p_value": string }; Returns: undefined
                           },
"_count_task_activity":
{ Args: { "p_bucket": string,"p_from": string,"p_to": string }; Returns: {
              "bucket_start": string,"claimed": number,"completed": number,"failed": number,"requeued": number
            }[]
                           },
"_dead_after":
{ Args: Record<PropertyKey, never>; Returns: string
                           },
"_end_run":
{ Args: { "p_error": string,"p_run_id": string,"p_status": string,"p_task_reason": string }; Returns: {
              "completed_at": string | null,
"created_at": string,
"error": string | null,
"id": string,
"metadata": NonNullable<Json>,
"name": string,
"started_at": string | null,
"status": string,
"updated_at": string
            }
                          SetofOptions: {
        from: "*"
        to: "runs"
        isOneToOne: true
        isSetofReturn: false
      } },
"_fence_answer":
{ Args: { "p_event": string,"p_lease_token": string,"p_task_id": number }; Returns: {
              "attempts": number,
"completed_at": string | null,
"crash_count": number,
"created_at": string,
"errors": NonNullable<Json>,
"id": number,
"last_error": string | null,
"last_heartbeat": string | null,
"lease_expires_at": string | null,
"lease_seconds": number | null,
"lease_token": string | null,
"max_attempts": number,
"owner_id": string | null,
"payload": NonNullable<Json>,
"priority": number,
"result": Json | null,
"revoked_lease_token": string | null,
"revoked_owner_id": string | null,
"revoked_until": string | null,
"run_at": string,
"run_id": string | null,
"started_at": string | null,
"status": string,
"task_type": string,
"timeout_seconds": number | null,
"updated_at": string
            }
                          SetofOptions: {
        from: "*"
        to: "tasks"
        isOneToOne: true
        isSetofReturn: false
      } },
"_fence_record":
{ Args: { "p_lease_token": string,"p_task": Omit<Database["taskwarden"]['Tables']["tasks"]['Row'], Database["taskwarden"]['Tables']["tasks"]['ComputedFields']> }; Returns: Json
                           },
"_get_run_for_update":
{ Args: { "p_run_id": string }; Returns: {
              "completed_at": string | null,
"created_at": string,
"error": string | null,
"id": string,
"metadata": NonNullable<Json>,
"name": string,
"started_at": string | null,
"status": string,
"updated_at": string
            }
                          SetofOptions: {
        from: "*"
        to: "runs"
        isOneToOne: true
        isSetofReturn: false
      } },
"_held_tasks":
{ Args: { "p_worker_id": string }; Returns: number
                           },
"_lease_scan":
{ Args: { "p_after": number,"p_rows": number }; Returns: Record<string, unknown>
                           },
"_missing_setting":
{ Args: { "p_key": string }; Returns: string
                           },
"_prune":
{ Args: { "p_dry_run": boolean,"p_max_batches"?: number }; Returns: Json
                           },
"_raise_lease_lost":
{ Args: { "p_lease_token": string,"p_task_id": number }; Returns: undefined
                           },
"_reap_dead_workers":
{ Args: { "p_batch": number,"p_dead_after": number,"p_dry_run": boolean }; Returns: {
              "action": string,"attempts": number,"owner_id": string,"reason": string,"run_id": string,"task_id": number,"task_type": string
            }[]
                           },
"_reap_expired_leases":
{ Args: { "p_dry_run": boolean,"p_ids": (number)[] }; Returns: {
              "action": string,"attempts": number,"owner_id": string,"reason": string,"run_id": string,"task_id": number,"task_type": string
            }[]
                           },
"_reap_timed_out":
{ Args: { "p_batch": number,"p_dry_run": boolean }; Returns: {
              "action": string,"attempts": number,"owner_id": string,"reason": string,"run_id": string,"task_id": number,"task_type": string
            }[]
                           },
"_release_claims":
{ Args: { "p_ids": (number)[],"p_reason": string }; Returns: {
              "attempts": number,
"completed_at": string | null,
"crash_count": number,
"created_at": string,
"errors": NonNullable<Json>,
"id": number,
"last_error": string | null,
"last_heartbeat": string | null,
"lease_expires_at": string | null,
"lease_seconds": number | null,
"lease_token": string | null,
"max_attempts": number,
"owner_id": string | null,
"payload": NonNullable<Json>,
"priority": number,
"result": Json | null,
"revoked_lease_token": string | null,
"revoked_owner_id": string | null,
"revoked_until": string | null,
"run_at": string,
"run_id": string | null,
"started_at": string | null,
"status": string,
"task_type": string,
"timeout_seconds": number | null,
"updated_at": string
            }[]
                          SetofOptions: {
        from: "*"
        to: "tasks"
        isOneToOne: false
        isSetofReturn: true
      } },
"_requeue_or_fail":
{ Args: { "p_budget"?: number,"p_dry_run": boolean,"p_error": string,"p_ids": (number)[],"p_reason": string }; Returns: {
              "action": string,"attempts": number,"owner_id": string,"reason": string,"run_id": string,"task_id": number,"task_type": string
            }[]
                           },
"_retry_decision":
{ Args: { "p_attempts": number,"p_max_attempts": number,"p_retryable"?: boolean }; Returns: Record<string, unknown>
                           },
"_retry_delay":
{ Args: { "p_attempts": number }; Returns: string
                           },
"_roll_up_task_activity":
{ Args: { "p_dry_run": boolean }; Returns: Json
                           },
"_setting_bool":
{ Args: { "p_key": string }; Returns: boolean
                           },
"_setting_num":
{ Args: { "p_key": string }; Returns: number
                           },
"_worker_base":
{ Args: { "p_worker_id": string }; Returns: string
                           },
"archive_run":
{ Args: { "note"?: string,"run_id": string }; Returns: {
              "completed_at": string | null,
"created_at": string,
"error": string | null,
"id": string,
"metadata": NonNullable<Json>,
"name": string,
"started_at": string | null,
"status": string,
"updated_at": string
            }
                          SetofOptions: {
        from: "*"
        to: "runs"
        isOneToOne: true
        isSetofReturn: false
      } },
"cancel_run":
{ Args: { "reason"?: string,"run_id": string }; Returns: {
              "completed_at": string | null,
"created_at": string,
"error": string | null,
"id": string,
"metadata": NonNullable<Json>,
"name": string,
"started_at": string | null,
"status": string,
"updated_at": string
            }
                          SetofOptions: {
        from: "*"
        to: "runs"
        isOneToOne: true
        isSetofReturn: false
      } },
"cancel_task":
{ Args: { "reason"?: string,"task_id": number }; Returns: {
              "attempts": number,
"completed_at": string | null,
"crash_count": number,
"created_at": string,
"errors": NonNullable<Json>,
"id": number,
"last_error": string | null,
"last_heartbeat": string | null,
"lease_expires_at": string | null,
"lease_seconds": number | null,
"lease_token": string | null,
"max_attempts": number,
"owner_id": string | null,
"payload": NonNullable<Json>,
"priority": number,
"result": Json | null,
"revoked_lease_token": string | null,
"revoked_owner_id": string | null,
"revoked_until": string | null,
"run_at": string,
"run_id": string | null,
"started_at": string | null,
"status": string,
"task_type": string,
"timeout_seconds": number | null,
"updated_at": string
            }
                          SetofOptions: {
        from: "*"
        to: "tasks"
        isOneToOne: true
        isSetofReturn: false
      } },
"claim_tasks":
{ Args: { "batch_size"?: number,"lease_seconds"?: number,"run_id"?: string,"task_types"?: (string)[],"worker_id": string }; Returns: {
              "attempts": number,
"completed_at": string | null,
"crash_count": number,
"created_at": string,
"errors": NonNullable<Json>,
"id": number,
"last_error": string | null,
"last_heartbeat": string | null,
"lease_expires_at": string | null,
"lease_seconds": number | null,
"lease_token": string | null,
"max_attempts": number,
"owner_id": string | null,
"payload": NonNullable<Json>,
"priority": number,
"result": Json | null,
"revoked_lease_token": string | null,
"revoked_owner_id": string | null,
"revoked_until": string | null,
"run_at": string,
"run_id": string | null,
"started_at": string | null,
"status": string,
"task_type": string,
"timeout_seconds": number | null,
"updated_at": string
            }[]
                          SetofOptions: {
        from: "*"
        to: "tasks"
        isOneToOne: false
        isSetofReturn: true
      } },
"cleanup_stale_running_tasks":
{ Args: { "batch_size"?: number,"dry_run"?: boolean,"max_attempts"?: number,"stale_minutes"?: number }; Returns: {
              "action": string,"attempts": number,"owner_id": string,"reason": string,"run_id": string,"task_id": number,"task_type": string
            }[]
                           },
"cleanup_stale_runs":
{ Args: { "dry_run"?: boolean,"stale_hours"?: number }; Returns: {
              "action": string,"last_progress_at": string,"name": string,"run_id": string,"stale_for_hours": number,"started_at": string,"status": string,"tasks_completed": number,"tasks_failed": number,"tasks_queued": number,"tasks_running": number,"tasks_total": number
            }[]
                           },
"cleanup_stale_workers":
{ Args: { "stale_minutes"?: number }; Returns: number
                           },
"complete_task":
{ Args: { "lease_token": string,"result"?: Json,"task_id": number }; Returns: {
              "attempts": number,
"completed_at": string | null,
"crash_count": number,
"created_at": string,
"errors": NonNullable<Json>,
"id": number,
"last_error": string | null,
"last_heartbeat": string | null,
"lease_expires_at": string | null,
"lease_seconds": number | null,
"lease_token": string | null,
"max_attempts": number,
"owner_id": string | null,
"payload": NonNullable<Json>,
"priority": number,
"result": Json | null,
"revoked_lease_token": string | null,
"revoked_owner_id": string | null,
"revoked_until": string | null,
"run_at": string,
"run_id": string | null,
"started_at": string | null,
"status": string,
"task_type": string,
"timeout_seconds": number | null,
"updated_at": string
            }
                          SetofOptions: {
        from: "*"
        to: "tasks"
        isOneToOne: true
        isSetofReturn: false
      } },
"complete_tasks":
{ Args: { "lease_tokens": (string)[],"results"?: (Json)[],"task_ids": (number)[] }; Returns: {
              "completed": boolean,"task_id": number
            }[]
                           },
"create_run":
{ Args: { "metadata"?: Json,"name": string }; Returns: {
              "completed_at": string | null,
"created_at": string,
"error": string | null,
"id": string,
"metadata": NonNullable<Json>,
"name": string,
"started_at": string | null,
"status": string,
"updated_at": string
            }
                          SetofOptions: {
        from: "*"
        to: "runs"
        isOneToOne: true
        isSetofReturn: false
      } },
"enqueue_task":
{ Args: { "max_attempts"?: number,"payload"?: Json,"priority"?: number,"run_at"?: string,"run_id"?: string,"task_type": string,"timeout_seconds"?: number }; Returns: {
              "attempts": number,
"completed_at": string | null,
"crash_count": number,
"created_at": string,
"errors": NonNullable<Json>,
"id": number,
"last_error": string | null,
"last_heartbeat": string | null,
"lease_expires_at": string | null,
"lease_seconds": number | null,
"lease_token": string | null,
"max_attempts": number,
"owner_id": string | null,
"payload": NonNullable<Json>,
"priority": number,
"result": Json | null,
"revoked_lease_token": string | null,
"revoked_owner_id": string | null,
"revoked_until": string | null,
"run_at": string,
"run_id": string | null,
"started_at": string | null,
"status": string,
"task_type": string,
"timeout_seconds": number | null,
"updated_at": string
            }
                          SetofOptions: {
        from: "*"
        to: "tasks"
        isOneToOne: true
        isSetofReturn: false
      } },
"enqueue_tasks":
{ Args: { "max_attempts"?: number,"payloads": (Json)[],"priority"?: number,"run_at"?: string,"run_id"?: string,"task_type": string,"timeout_seconds"?: number }; Returns: {
              "attempts": number,
"completed_at": string | null,
"crash_count": number,
"created_at": string,
"errors": NonNullable<Json>,
"id": number,
"last_error": string | null,
"last_heartbeat": string | null,
"lease_expires_at": string | null,
"lease_seconds": number | null,
"lease_token": string | null,
"max_attempts": number,
"owner_id": string | null,
"payload": NonNullable<Json>,
"priority": number,
"result": Json | null,
"revoked_lease_token": string | null,
"revoked_owner_id": string | null,
"revoked_until": string | null,
"run_at": string,
"run_id": string | null,
"started_at": string | null,
"status": string,
"task_type": string,
"timeout_seconds": number | null,
"updated_at": string
            }[]
                          SetofOptions: {
        from: "*"
        to: "tasks"
        isOneToOne: false
        isSetofReturn: true
      } },
"fail_task":
{ Args: { "error": string,"lease_token": string,"retryable"?: boolean,"task_id": number }; Returns: {
              "attempts": number,
"completed_at": string | null,
"crash_count": number,
"created_at": string,
"errors": NonNullable<Json>,
"id": number,
"last_error": string | null,
"last_heartbeat": string | null,
"lease_expires_at": string | null,
"lease_seconds": number | null,
"lease_token": string | null,
"max_attempts": number,
"owner_id": string | null,
"payload": NonNullable<Json>,
"priority": number,
"result": Json | null,
"revoked_lease_token": string | null,
"revoked_owner_id": string | null,
"revoked_until": string | null,
"run_at": string,
"run_id": string | null,
"started_at": string | null,
"status": string,
"task_type": string,
"timeout_seconds": number | null,
"updated_at": string
            }
                          SetofOptions: {
        from: "*"
        to: "tasks"
        isOneToOne: true
        isSetofReturn: false
      } },
"find_stale_runs":
{ Args: { "stale_hours"?: number }; Returns: {
              "last_progress_at": string,"name": string,"run_id": string,"stale_for_hours": number,"started_at": string,"status": string,"tasks_completed": number,"tasks_failed": number,"tasks_queued": number,"tasks_running": number,"tasks_total": number
            }[]
                           },
"finish_run":
{ Args: { "error"?: string,"run_id": string }; Returns: {
              "completed_at": string | null,
"created_at": string,
"error": string | null,
"id": string,
"metadata": NonNullable<Json>,
"name": string,
"started_at": string | null,
"status": string,
"updated_at": string
            }
                          SetofOptions: {
        from: "*"
        to: "runs"
        isOneToOne: true
        isSetofReturn: false
      } },
"get_task":
{ Args: { "task_id": number }; Returns: Json
                           },
"get_task_activity":
{ Args: { "bucket_seconds"?: number,"minutes"?: number }; Returns: {
              "bucket_start": string,"claimed": number,"completed": number,"failed": number,"requeued": number
            }[]
                           },
"get_task_counts":
{ Args: { "exact_limit"?: number }; Returns: Json
                           },
"get_worker_health_summary":
{ Args: Record<PropertyKey, never>; Returns: Json
                           },
"get_worker_stats":
{ Args: Record<PropertyKey, never>; Returns: {
              "active": number,"dead": number,"idle": number,"processing": number,"stopped": number,"stopping": number,"total": number,"worker_type": string
            }[]
                           },
"is_run_stale":
{ Args: { "run_id": string,"stale_hours"?: number }; Returns: boolean
                           },
"list_reaper_actions":
{ Args: { "max_rows"?: number }; Returns: {
              "attempt": number,"created_at": string,"event": string,"id": number,"reason": string,"task_id": number,"worker_id": string
            }[]
                           },
"list_workers":
{ Args: Record<PropertyKey, never>; Returns: {
              "current_run_id": string,"current_task": string,"dead": boolean,"duplicate_base": boolean,"held_task": string,"held_task_ids": (number)[],"held_tasks": number,"host": string,"last_heartbeat_at": string,"pid": number,"run_filter_id": string,"seconds_since_heartbeat": number,"started_at": string,"status": string,"stop_requested_at": string,"worker_id": string,"worker_type": string
            }[]
                           },
"mark_alerts_sent":
{ Args: { "alert_ids": (number)[],"event": string }; Returns: number
                           },
"prune":
{ Args: { "dry_run"?: boolean }; Returns: Json
                           },
"reap":
{ Args: { "dry_run"?: boolean,"source"?: string }; Returns: Json
                           },
"recover_worker_tasks":
{ Args: { "worker_id": string }; Returns: number
                           },
"release_dead_worker_leases":
{ Args: { "dead_after_seconds"?: number }; Returns: {
              "action": string,"attempts": number,"owner_id": string,"reason": string,"run_id": string,"task_id": number,"task_type": string
            }[]
                           },
"release_task":
{ Args: { "lease_token": string,"task_id": number }; Returns: {
              "attempts": number,
"completed_at": string | null,
"crash_count": number,
"created_at": string,
"errors": NonNullable<Json>,
"id": number,
"last_error": string | null,
"last_heartbeat": string | null,
"lease_expires_at": string | null,
"lease_seconds": number | null,
"lease_token": string | null,
"max_attempts": number,
"owner_id": string | null,
"payload": NonNullable<Json>,
"priority": number,
"result": Json | null,
"revoked_lease_token": string | null,
"revoked_owner_id": string | null,
"revoked_until": string | null,
"run_at": string,
"run_id": string | null,
"started_at": string | null,
"status": string,
"task_type": string,
"timeout_seconds": number | null,
"updated_at": string
            }
                          SetofOptions: {
        from: "*"
        to: "tasks"
        isOneToOne: true
        isSetofReturn: false
      } },
"renew_task_lease":
{ Args: { "lease_seconds"?: number,"lease_token": string,"task_id": number }; Returns: {
              "attempts": number,
"completed_at": string | null,
"crash_count": number,
"created_at": string,
"errors": NonNullable<Json>,
"id": number,
"last_error": string | null,
"last_heartbeat": string | null,
"lease_expires_at": string | null,
"lease_seconds": number | null,
"lease_token": string | null,
"max_attempts": number,
"owner_id": string | null,
"payload": NonNullable<Json>,
"priority": number,
"result": Json | null,
"revoked_lease_token": string | null,
"revoked_owner_id": string | null,
"revoked_until": string | null,
"run_at": string,
"run_id": string | null,
"started_at": string | null,
"status": string,
"task_type": string,
"timeout_seconds": number | null,
"updated_at": string
            }
                          SetofOptions: {
        from: "*"
        to: "tasks"
        isOneToOne: true
        isSetofReturn: false
      } },
"request_worker_stop":
{ Args: { "worker_id": string }; Returns: {
              "beats": number,
"current_run_id": string | null,
"current_task": string | null,
"host": string | null,
"last_heartbeat_at": string,
"lease_expires_at": string | null,
"metadata": NonNullable<Json>,
"pid": number | null,
"run_filter_id": string | null,
"started_at": string,
"status": string,
"stop_requested_at": string | null,
"stopped_at": string | null,
"worker_id": string,
"worker_type": string
            }
                          SetofOptions: {
        from: "*"
        to: "worker_heartbeats"
        isOneToOne: true
        isSetofReturn: false
      } },
"requeue_task":
{ Args: { "reason"?: string,"task_id": number }; Returns: {
              "attempts": number,
"completed_at": string | null,
"crash_count": number,
"created_at": string,
"errors": NonNullable<Json>,
"id": number,
"last_error": string | null,
"last_heartbeat": string | null,
"lease_expires_at": string | null,
"lease_seconds": number | null,
"lease_token": string | null,
"max_attempts": number,
"owner_id": string | null,
"payload": NonNullable<Json>,
"priority": number,
"result": Json | null,
"revoked_lease_token": string | null,
"revoked_owner_id": string | null,
"revoked_until": string | null,
"run_at": string,
"run_id": string | null,
"started_at": string | null,
"status": string,
"task_type": string,
"timeout_seconds": number | null,
"updated_at": string
            }
                          SetofOptions: {
        from: "*"
        to: "tasks"
        isOneToOne: true
        isSetofReturn: false
      } },
"schedule_reaper":
{ Args: { "interval_seconds"?: number }; Returns: string
                           },
"start_run":
{ Args: { "run_id": string }; Returns: {
              "completed_at": string | null,
"created_at": string,
"error": string | null,
"id": string,
"metadata": NonNullable<Json>,
"name": string,
"started_at": string | null,
"status": string,
"updated_at": string
            }
                          SetofOptions: {
        from: "*"
        to: "runs"
        isOneToOne: true
        isSetofReturn: false
      } },
"stop_worker":
{ Args: { "release_tasks"?: boolean,"worker_id": string }; Returns: number
                           },
"sync_alerts":
{ Args: { "channels": (string)[] }; Returns: {
              "alert_id": number,"channel": string,"details": Json,"event": string,"kind": string,"opened_at": string,"resolved_at": string,"subject": string
            }[]
                           },
"upsert_worker_heartbeat":
{ Args: { "current_run_id"?: string,"current_task"?: string,"held_lease_tokens"?: (string)[],"held_task_ids"?: (number)[],"lease_seconds"?: number,"metadata"?: Json,"run_filter_id"?: string,"status"?: string,"worker_id": string,"worker_type": string }; Returns: {
              "dead_after_seconds": number,"handed_back_task_ids": (number)[],"lease_expires_at": string,"lost_lease_tokens": (string)[],"lost_task_ids": (number)[],"renewed_task_ids": (number)[],"server_time": string,"stop_reason": string,"stop_requested": boolean,"worker_expires_at": string
            }[]
                           }
          }
          Enums: {
            [_ in never]: never
          }
          CompositeTypes: {
            [_ in never]: never
          }
        }
}

type DatabaseWithoutInternals = Omit<Database, '__InternalSupabase'>

type DefaultSchema = DatabaseWithoutInternals[Extract<keyof Database, "taskwarden">]

export type Tables<
  DefaultSchemaTableNameOrOptions extends
    | keyof (DefaultSchema["Tables"] & DefaultSchema["Views"])
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof (DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"] &
        DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Views"])
    : never = never
> = DefaultSchemaTableNameOrOptions extends { schema: keyof DatabaseWithoutInternals }
  ? (DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"] &
      DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Views"])[TableName] extends {
      Row: infer R
    }
    ? R
    : never
  : DefaultSchemaTableNameOrOptions extends keyof (DefaultSchema["Tables"] & DefaultSchema["Views"])
  ? (DefaultSchema["Tables"] & DefaultSchema["Views"])[DefaultSchemaTableNameOrOptions] extends {
      Row: infer R
    }
    ? R
    : never
  : never

export type TablesInsert<
  DefaultSchemaTableNameOrOptions extends
    | keyof DefaultSchema["Tables"]
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"]
    : never = never
> = DefaultSchemaTableNameOrOptions extends { schema: keyof DatabaseWithoutInternals }
  ? DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"][TableName] extends {
      Insert: infer I
    }
    ? I
    : never
  : DefaultSchemaTableNameOrOptions extends keyof DefaultSchema["Tables"]
  ? DefaultSchema["Tables"][DefaultSchemaTableNameOrOptions] extends {
      Insert: infer I
    }
    ? I
    : never
  : never

export type TablesUpdate<
  DefaultSchemaTableNameOrOptions extends
    | keyof DefaultSchema["Tables"]
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"]
    : never = never
> = DefaultSchemaTableNameOrOptions extends { schema: keyof DatabaseWithoutInternals }
  ? DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"][TableName] extends {
      Update: infer U
    }
    ? U
    : never
  : DefaultSchemaTableNameOrOptions extends keyof DefaultSchema["Tables"]
  ? DefaultSchema["Tables"][DefaultSchemaTableNameOrOptions] extends {
      Update: infer U
    }
    ? U
    : never
  : never

export type Enums<
  DefaultSchemaEnumNameOrOptions extends
    | keyof DefaultSchema["Enums"]
    | { schema: keyof DatabaseWithoutInternals },
  EnumName extends DefaultSchemaEnumNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[DefaultSchemaEnumNameOrOptions["schema"]]["Enums"]
    : never = never
> = DefaultSchemaEnumNameOrOptions extends { schema: keyof DatabaseWithoutInternals }
  ? DatabaseWithoutInternals[DefaultSchemaEnumNameOrOptions["schema"]]["Enums"][EnumName]
  : DefaultSchemaEnumNameOrOptions extends keyof DefaultSchema["Enums"]
  ? DefaultSchema["Enums"][DefaultSchemaEnumNameOrOptions]
  : never

export type CompositeTypes<
  PublicCompositeTypeNameOrOptions extends
    | keyof DefaultSchema["CompositeTypes"]
    | { schema: keyof DatabaseWithoutInternals },
  CompositeTypeName extends PublicCompositeTypeNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[PublicCompositeTypeNameOrOptions["schema"]]["CompositeTypes"]
    : never = never
> = PublicCompositeTypeNameOrOptions extends { schema: keyof DatabaseWithoutInternals }
  ? DatabaseWithoutInternals[PublicCompositeTypeNameOrOptions["schema"]]["CompositeTypes"][CompositeTypeName]
  : PublicCompositeTypeNameOrOptions extends keyof DefaultSchema["CompositeTypes"]
  ? DefaultSchema["CompositeTypes"][PublicCompositeTypeNameOrOptions]
  : never

export const Constants = {
  "taskwarden": {
          Enums: {
            
          }
        }
} as const
