//! Threads that start worker processes in parallel.
//!
//! `spawn` returns only once the child has exec'd, so starting workers one
//! by one costs one exec after another; on N CPUs, N spawners overlap them.
//! A worker's `PR_SET_PDEATHSIG` fires when the *thread* that started it
//! exits, so the spawners live as long as the team: the team drops them
//! after every worker was reaped.

use std::process::{Child, Command};
use std::sync::{Arc, Mutex, mpsc};

use crate::error::Error;
use crate::locks::lock;

type Job = (usize, Command, mpsc::Sender<(usize, std::io::Result<Child>)>);

#[derive(Debug)]
pub(crate) struct Spawner {
    jobs: Option<mpsc::Sender<Job>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Spawner {
    /// Up to `threads` spawner threads (at least one).
    pub(crate) fn new(threads: usize) -> Result<Spawner, Error> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let rx = Arc::clone(&rx);
            let handle = std::thread::Builder::new().name(format!("vecpar-spawn-{i}")).spawn(move || {
                loop {
                    let job = lock(&rx).recv();
                    let Ok((id, mut command, reply)) = job else { break };
                    let _ = reply.send((id, crate::signals::with_no_signal_blocked(|| command.spawn())));
                }
            });
            match handle {
                Ok(h) => handles.push(h),
                // Fewer spawners only means less overlap; none is an error.
                Err(e) if handles.is_empty() => {
                    return Err(Error::runtime_from(
                        "cannot start a thread to spawn workers (the system refused another thread); lower --procs",
                        e,
                    ));
                }
                Err(_) => break,
            }
        }
        Ok(Spawner { jobs: Some(tx), threads: handles })
    }

    /// Spawns every command; results in the order of the ids.
    pub(crate) fn spawn_all(&self, commands: Vec<(usize, Command)>) -> Vec<(usize, std::io::Result<Child>)> {
        let (reply, results) = mpsc::channel();
        let n = commands.len();
        for (id, command) in commands {
            let sent = self.jobs.as_ref().is_some_and(|jobs| jobs.send((id, command, reply.clone())).is_ok());
            if !sent {
                let _ = reply.send((id, Err(std::io::Error::other("the spawner threads are gone"))));
            }
        }
        let mut out: Vec<(usize, std::io::Result<Child>)> = results.iter().take(n).collect();
        out.sort_by_key(|(id, _)| *id);
        out
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        self.jobs.take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
