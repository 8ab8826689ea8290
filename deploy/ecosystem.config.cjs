// PM2: `pm2 start deploy/ecosystem.config.cjs` (from the project root). Four workers that PM2
// restarts with exponential backoff when they crash, stopped with SIGTERM and given time to
// release their tasks; plus a reaper run every minute for databases without pg_cron.
// Set DATABASE_URL (or SUPABASE_URL + SUPABASE_SERVICE_ROLE_KEY) in the environment PM2 runs in.
module.exports = {
  apps: [
    {
      name: "taskwarden-worker",
      // Your worker script (it builds a Worker with the SDK); TypeScript runs through tsx.
      script: "./worker.ts",
      interpreter: "node",
      interpreter_args: "--import tsx",
      exec_mode: "fork",
      instances: 4,
      autorestart: true,
      // 0 = drained (`taskwarden workers stop`) or its run is over: do not restart.
      stop_exit_codes: [0],
      exp_backoff_restart_delay: 1000,
      min_uptime: "30s",
      max_restarts: 50,
      kill_signal: "SIGTERM",
      // Longer than the worker's own shutdown, so in-flight tasks are released, not reaped.
      kill_timeout: 45000,
      time: true,
      env: {
        NODE_ENV: "production",
      },
    },
    {
      name: "taskwarden-reap",
      script: "./bin/taskwarden.mjs",
      args: "reap --source pm2",
      exec_mode: "fork",
      instances: 1,
      autorestart: false,
      cron_restart: "* * * * *",
      time: true,
      env: {
        NODE_ENV: "production",
      },
    },
  ],
};
