//! `outofsync status`: how far a job is.

use std::process::ExitCode;

use anyhow::Context;
use outofsync_queue::{Queue, RedisQueue};

use crate::cli::StatusArgs;

pub fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let runtime = super::runtime(1)?;
    let result = runtime.block_on(async move {
        let conn =
            outofsync_queue::Connections::open(&args.queue.redis).await.context("cannot use --redis")?;
        let Some(job) = &args.job else {
            for name in conn.jobs().await? {
                let queue = RedisQueue::new(conn.clone(), &name)?;
                match queue.info().await {
                    Ok(info) => {
                        let total =
                            info.total.map_or_else(|| format!("{}+", info.submitted), |t| t.to_string());
                        println!("{name}\t{}\t{} of {total} finished", info.status, info.finished);
                    }
                    Err(_) => println!("{name}\texpired"),
                }
            }
            return anyhow::Ok(ExitCode::SUCCESS);
        };
        let status = outofsync_queue::status(&RedisQueue::new(conn, job)?).await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&status)?);
        } else {
            print!("{status}");
        }
        Ok(ExitCode::SUCCESS)
    });
    runtime.shutdown_background();
    result
}
