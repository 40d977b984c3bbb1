//! The Redis keys of a job, named so that Redis Cluster keeps each script's keys on one node.
//!
//! A job's own keys share the hash tag `{NAME}`: the Lua scripts that touch tasks, results and
//! the job's record together run on one node. Each host's shared limits have a tag of their own,
//! `{NAME/ORIGIN}`, so that in a cluster the hosts of one job spread over the nodes.

/// The prefix of every key.
pub const PREFIX: &str = "oos";
/// The set of jobs, by creation time (the one key outside any job's hash tag).
pub const JOBS: &str = "oos:jobs";
/// The consumer group of workers on a job's tasks.
pub const GROUP: &str = "workers";

/// The keys of one job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    /// The job's name.
    pub job: String,
    /// HASH: the job's options and counters.
    pub meta: String,
    /// STREAM: one entry per input not yet finished (`i`, `r`).
    pub tasks: String,
    /// STREAM: one entry per finished input not yet collected (`i`, `ok`, `rec`).
    pub results: String,
    /// HASH: worker name → its last heartbeat, in ms of the server's clock.
    pub workers: String,
}

impl Keys {
    /// The keys of job `job`.
    ///
    /// # Errors
    /// The name is empty, longer than 100 bytes, or holds a character other than letters,
    /// digits, `.`, `_` and `-` (braces would break the hash tag).
    pub fn new(job: &str) -> Result<Keys, String> {
        let fine = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if job.is_empty() || job.len() > 100 || !job.chars().all(fine) {
            return Err(format!(
                "job name {job:?}: use 1 to 100 letters, digits, '.', '_' or '-' (it becomes part of Redis keys)"
            ));
        }
        let key = |what: &str| format!("{PREFIX}:{{{job}}}:{what}");
        Ok(Keys {
            job: job.to_owned(),
            meta: key("meta"),
            tasks: key("tasks"),
            results: key("results"),
            workers: key("workers"),
        })
    }

    /// The keys of `origin`'s shared limits in this job: rate (GCRA), concurrency leases and
    /// cooldown, under one hash tag of their own.
    pub fn host(&self, origin: &str) -> [String; 3] {
        let tag = format!("{PREFIX}:{{{}/{origin}}}", self.job);
        [format!("{tag}:rate"), format!("{tag}:conc"), format!("{tag}:cool")]
    }

    /// Every key of the job itself (not of its hosts), to expire them together.
    pub fn all(&self) -> [&str; 4] {
        [&self.meta, &self.tasks, &self.results, &self.workers]
    }
}

/// The Redis Cluster hash tag of a key: what its slot is computed from.
pub fn hash_tag(key: &str) -> &str {
    match key.find('{') {
        Some(open) => match key[open + 1..].find('}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jobs_keys_share_one_hash_tag_and_each_host_has_its_own() {
        let keys = Keys::new("crawl-1").unwrap();
        for key in keys.all() {
            assert_eq!(hash_tag(key), "crawl-1", "{key}");
        }
        let [rate, conc, cool] = keys.host("http://127.0.0.1:8080");
        assert_eq!(hash_tag(&rate), "crawl-1/http://127.0.0.1:8080");
        assert!(hash_tag(&conc) == hash_tag(&rate) && hash_tag(&cool) == hash_tag(&rate));
        for bad in ["", "a{b}", "a b", "a:b", &"x".repeat(101)] {
            assert!(Keys::new(bad).is_err(), "{bad}");
        }
    }
}
