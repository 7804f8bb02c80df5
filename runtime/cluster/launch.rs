//! Starting worker processes, and the entry points that make a process a
//! worker when it was started as one.
//!
//! A worker is the program's own binary started again, with the
//! environment variables of [`env`](super::env) naming its id and where
//! process 0 listens, and the cluster secret written on its stdin (never in
//! its environment, which the processes its tasks start would inherit).
//! The entry point
//! (`#[dirk::main]`, `#[dirk::test]`) sees them and runs the worker loop
//! instead of the body. For a test binary the worker is started with the
//! arguments that run exactly the test that built the runtime
//! (`--exact <name>`), so it works under `cargo test` and nextest alike.
//!
//! Handshake (each step bounded in time; any failure stops the launch):
//!
//! 1. Process 0 makes a random 32-byte secret, listens on a Unix socket,
//!    creates two shared-memory rings per worker, and starts the workers.
//! 2. A worker connects and sends `Hello` (its id, pid and the secret).
//!    Process 0 checks the frame's cookie and the secret in constant time;
//!    a wrong secret, an unknown id, or an id already connected closes the
//!    connection.
//! 3. Process 0 answers `Welcome` (thread count, ring paths); the worker
//!    maps its rings, starts its runtime and answers `Ready`.
//! 4. Once every worker is ready, process 0 removes the ring files (both
//!    sides have them mapped) and keeps listening only to refuse.

use std::cell::RefCell;
use std::io::{BufRead, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{UnixListener, UnixStream};

use super::env;
use super::leader::{Cluster, Link};
use super::rundir::{self, RunDir};
use crate::Error;
use crate::exec::Shared;
use crate::transport::auth;
use crate::transport::frame::{Blobs, Message, cookie};
use crate::transport::shm::{self, Consumer, Producer};
use crate::transport::socket::{self, Io, read_frame, write_frame};

/// How long process 0 waits for its workers to connect and be ready.
const JOIN_TIMEOUT: Duration = Duration::from_secs(60);

/// What the program's entry point was.
#[derive(Clone, Debug)]
enum Entry {
    Main,
    Test(String),
}

static MAIN: AtomicBool = AtomicBool::new(false);
static TESTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

thread_local! {
    static TEST: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Whether this process was started as a worker.
pub(crate) fn is_worker() -> bool {
    std::env::var_os(env::WORKER).is_some()
}

/// Entry of `#[dirk::main]`.
pub(crate) fn main<R>(body: impl FnOnce() -> R) -> R {
    if is_worker() {
        super::serve::serve();
    }
    MAIN.store(true, Ordering::Release);
    under_mpi(body)
}

/// The rank and size an MPI launcher gave this process, when it was started
/// by one with more than one process (OpenMPI's `mpirun`, or `srun`).
pub(crate) fn mpi_launched() -> Option<(u32, u32)> {
    let var = |names: &[&str]| names.iter().find_map(|n| std::env::var(n).ok()?.trim().parse::<u32>().ok());
    let size = var(&["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS"])?;
    let rank = var(&["OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID"])?;
    (size > 1 && rank < size).then_some((rank, size))
}

/// Runs `body` in rank 0 of an MPI job (the other ranks become workers and
/// never return), or plainly when there is no job.
fn under_mpi<R>(body: impl FnOnce() -> R) -> R {
    let Some((rank, size)) = mpi_launched() else { return body() };
    #[cfg(feature = "mpi")]
    {
        let _ = (rank, size);
        let started = secret().and_then(crate::transport::mpi::Mpi::start);
        let mpi: &'static crate::transport::mpi::Mpi = match started {
            Ok(mpi) => Box::leak(Box::new(mpi)),
            Err(e) => {
                eprintln!("dirk: could not join the MPI job: {e}");
                std::process::exit(2)
            }
        };
        if mpi.rank != 0 {
            super::serve::serve_mpi(mpi);
        }
        let _ = MPI.set(mpi);
        let out = body();
        finish_mpi(mpi);
        out
    }
    #[cfg(not(feature = "mpi"))]
    {
        if rank != 0 {
            eprintln!(
                "dirk: started by an MPI launcher as rank {rank} of {size}, but built without dirk's `mpi` feature, so \
                 ranks cannot be workers; rank {rank} exits. Build with `--features mpi`."
            );
            std::process::exit(2)
        }
        eprintln!("dirk: rank 0 of {size} runs alone: dirk was built without its `mpi` feature");
        body()
    }
}

#[cfg(feature = "mpi")]
static MPI: std::sync::OnceLock<&'static crate::transport::mpi::Mpi> = std::sync::OnceLock::new();
#[cfg(feature = "mpi")]
static MPI_CLUSTER: std::sync::OnceLock<&'static Cluster> = std::sync::OnceLock::new();

/// At the end of rank 0's main: stops the workers, then MPI.
#[cfg(feature = "mpi")]
fn finish_mpi(mpi: &'static crate::transport::mpi::Mpi) {
    match MPI_CLUSTER.get() {
        Some(cluster) => cluster.shutdown(),
        None => {
            let cookie = cookie(&mpi.secret);
            for rank in 1..mpi.size {
                let _ = mpi.outbox(rank, cookie).send(&Message::Shutdown, Blobs::default());
            }
        }
    }
    mpi.finish();
}

/// In rank 0 of an MPI job whose ranks no runtime has taken yet: makes the
/// other ranks the workers of the runtime `shared`.
pub(crate) fn join_mpi(
    shared: &'static Shared,
    threads: usize,
    timeout: Duration,
) -> Result<Option<&'static Cluster>, Error> {
    #[cfg(feature = "mpi")]
    {
        let Some(mpi) = MPI.get().copied() else { return Ok(None) };
        if MPI_CLUSTER.get().is_some() {
            return Ok(None);
        }
        let cluster = start_mpi(shared, mpi, threads)?;
        let _ = MPI_CLUSTER.set(cluster);
        cluster.watch(timeout);
        Ok(Some(cluster))
    }
    #[cfg(not(feature = "mpi"))]
    {
        let _ = (shared, threads, timeout);
        Ok(None)
    }
}

#[cfg(feature = "mpi")]
fn start_mpi(
    shared: &'static Shared,
    mpi: &'static crate::transport::mpi::Mpi,
    threads: usize,
) -> Result<&'static Cluster, Error> {
    use std::sync::mpsc::channel;

    let cookie = cookie(&mpi.secret);
    let address = format!("mpi: rank 0 of {}", mpi.size);
    let cluster: &'static Cluster = Box::leak(Box::new(Cluster::new(shared, Io::start()?, cookie, address, None)));
    let (tx, rx) = channel();
    let tx = Mutex::new(tx);
    mpi.set_handler(Arc::new(move |rank, frame| {
        let _ = tx.lock().unwrap_or_else(|e| e.into_inner()).send((rank, frame));
    }));
    let workers = mpi.size as usize - 1;
    let mut pids = vec![None; workers];
    let mut ready: Vec<Option<usize>> = vec![None; workers];
    let deadline = std::time::Instant::now() + JOIN_TIMEOUT;
    // Ranks are started by the MPI launcher and reach rank 0 over MPI
    // alone: their `Hello` proves the secret over a nonce of their own,
    // and a nonce seen before is a replay.
    let seen = auth::Seen::default();
    while ready.iter().any(Option::is_none) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let Ok((rank, frame)) = rx.recv_timeout(left) else {
            return Err(Error::Transport(format!("MPI ranks did not join within {JOIN_TIMEOUT:?}")));
        };
        let w = rank as usize;
        let Ok(Ok(message)) = frame.map(|f| f.owned()) else { continue };
        match message {
            Message::Hello { worker, pid, nonce, proof }
                if worker == rank
                    && (1..=workers).contains(&w)
                    && auth::same(&proof, &auth::hello_proof(&mpi.secret, &auth::NO_CHALLENGE, &nonce, worker, 0))
                    && seen.first(&nonce) =>
            {
                pids[w - 1] = Some(pid);
                let welcome = Message::Welcome {
                    threads: threads as u32,
                    workers: workers as u32,
                    to_worker_ring: String::new(),
                    to_main_ring: String::new(),
                    proof: auth::welcome_proof(&mpi.secret, &auth::NO_CHALLENGE, &nonce),
                };
                mpi.outbox(rank, cookie).send(&welcome, Blobs::default())?;
            }
            Message::Ready { threads } if (1..=workers).contains(&w) && pids[w - 1].is_some() => {
                ready[w - 1] = Some(threads as usize)
            }
            _ => {}
        }
    }
    let links: Vec<Link> = (1..=workers)
        .map(|w| Link {
            threads: ready[w - 1].unwrap_or(1),
            pid: pids[w - 1].unwrap_or(0),
            outbox: mpi.outbox(w as u32, cookie),
            ring_out: None,
            ring_in: None,
            alive: AtomicBool::new(true),
            heard: AtomicBool::new(true),
            load: Default::default(),
            frees: Default::default(),
        })
        .collect();
    let _ = cluster.links.set(links.into_boxed_slice());
    mpi.set_handler(Arc::new(move |rank, frame| match frame {
        Ok(frame) => cluster.on_frame(rank, frame),
        Err(e) => cluster.on_lost(rank, e),
    }));
    Ok(cluster)
}

/// Entry of `#[dirk::test]`; `path` is `module_path!()::name`.
pub(crate) fn test<R>(path: &str, body: impl FnOnce() -> R) -> R {
    if is_worker() {
        super::serve::serve();
    }
    if mpi_launched().is_some() {
        // Under an MPI launcher a test is a program like any other.
        MAIN.store(true, Ordering::Release);
        return under_mpi(body);
    }
    // libtest names tests by their path inside the crate.
    let name = path.split_once("::").map_or(path, |(_, rest)| rest).to_owned();
    TESTS.lock().unwrap_or_else(|e| e.into_inner()).push(name.clone());
    TEST.with(|t| *t.borrow_mut() = Some(name.clone()));
    struct Done(String);
    impl Drop for Done {
        fn drop(&mut self) {
            TEST.with(|t| *t.borrow_mut() = None);
            let mut tests = TESTS.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(i) = tests.iter().position(|t| *t == self.0) {
                tests.swap_remove(i);
            }
        }
    }
    let _done = Done(name);
    body()
}

fn entry() -> Result<Entry, Error> {
    if let Some(name) = TEST.with(|t| t.borrow().clone()) {
        return Ok(Entry::Test(name));
    }
    if MAIN.load(Ordering::Acquire) {
        return Ok(Entry::Main);
    }
    if !TESTS.lock().unwrap_or_else(|e| e.into_inner()).is_empty() {
        return Err(Error::Config(
            "a #[dirk::test] starts workers from the test's own thread only (workers run that test again, and \
             another thread cannot tell which test it belongs to): build the runtime before handing work to other threads"
                .to_owned(),
        ));
    }
    Err(Error::Config(
        "worker processes run this program again and need to know where it starts: put #[dirk::main] on `fn main` \
         (or #[dirk::test] on the test)"
            .to_owned(),
    ))
}

/// A fresh random secret.
fn secret() -> Result<[u8; 32], Error> {
    auth::random().map_err(|e| Error::Config(format!("no cluster secret: {e}")))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn unhex(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// How a cluster is to be started.
#[derive(Clone, Debug)]
pub(crate) struct Launch {
    pub(crate) workers: usize,
    pub(crate) threads: usize,
    pub(crate) ring_bytes: u64,
    /// How long a worker may stay silent before it is lost (`leader/watch.rs`).
    pub(crate) timeout: Duration,
}

/// How long a worker may stay silent before it is lost, unless the
/// builder says otherwise (`Builder::worker_timeout`).
pub(crate) const WORKER_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether a cluster on this host (process 0 with `main_threads`,
/// `workers` processes of `worker_threads`, an I/O thread in each) has
/// more threads than the host has cores.
pub(crate) fn crowded(main_threads: usize, workers: usize, worker_threads: usize) -> bool {
    main_threads + workers * (worker_threads + 1) + 1 > std::thread::available_parallelism().map_or(1, usize::from)
}

/// Starts `plan.workers` worker processes for the runtime `shared`.
pub(crate) fn start(shared: &'static Shared, plan: Launch) -> Result<&'static Cluster, Error> {
    if is_worker() {
        return Err(Error::Config(format!(
            "this process is dirk worker {} and cannot start workers of its own: mark the program's entry with \
             #[dirk::main] (or the test with #[dirk::test]) so that workers run the worker loop",
            std::env::var(env::WORKER).unwrap_or_default()
        )));
    }
    if !(1..=63).contains(&plan.workers) {
        return Err(Error::Config(format!("a cluster has 1 to 63 workers, not {}", plan.workers)));
    }
    let entry = entry()?;
    let secret = secret()?;
    let cookie = cookie(&secret);
    let io = Io::start()?;
    // Names nobody can guess, from randomness of their own (not the secret's).
    let random = self::secret()?;
    let tag = format!("dirk-{}-{}", std::process::id(), hex(&random[..8]));
    let run_dir = RunDir::create(&random[8..16])?;
    let address = run_dir.main_socket();
    let listener = {
        let _in_io = io.handle().enter();
        let bound = UnixListener::bind(&address)
            .map_err(|e| Error::Transport(format!("could not listen on {}: {e}", address.display())));
        match bound.and_then(|l| rundir::private(&address).map(|()| l)) {
            Ok(listener) => listener,
            Err(e) => {
                run_dir.remove();
                return Err(e);
            }
        }
    };
    let cluster: &'static Cluster =
        Box::leak(Box::new(Cluster::new(shared, io, cookie, address.to_string_lossy().into_owned(), Some(run_dir))));
    match start_workers(cluster, listener, &plan, &entry, &secret, &tag) {
        Ok(()) => {
            if crowded(shared.threads(), plan.workers, plan.threads) {
                shared.spin_less();
            }
            cluster.watch(plan.timeout);
            Ok(cluster)
        }
        Err(e) => {
            cluster.shutdown();
            Err(e)
        }
    }
}

/// A worker's two rings; none when shared memory is short (values then go
/// through the socket, which is slower but never faults).
struct Rings {
    to_worker: Option<Producer>,
    to_main: Option<Consumer>,
}

fn start_workers(
    cluster: &'static Cluster,
    listener: UnixListener,
    plan: &Launch,
    entry: &Entry,
    secret: &[u8; 32],
    tag: &str,
) -> Result<(), Error> {
    let mut rings = Vec::new();
    for w in 1..=plan.workers {
        let down = shm::ring_path(&format!("{tag}-w{w}-down"));
        let up = shm::ring_path(&format!("{tag}-w{w}-up"));
        let made = Producer::create(&down, plan.ring_bytes).and_then(|to_worker| {
            Consumer::create(&up, plan.ring_bytes).map(|to_main| (to_worker, to_main)).inspect_err(|_| {
                let _ = std::fs::remove_file(&down);
            })
        });
        match made {
            Ok((to_worker, to_main)) => {
                cluster.ring_files.lock().extend([down.clone(), up.clone()]);
                rings.push(Rings { to_worker: Some(to_worker), to_main: Some(to_main) });
            }
            Err(e) => {
                eprintln!("dirk: worker {w} gets no shared-memory rings ({e}); its values go through the socket");
                rings.push(Rings { to_worker: None, to_main: None });
            }
        }
    }
    let exe =
        std::env::current_exe().map_err(|e| Error::Config(format!("could not find this program's binary: {e}")))?;
    for w in 1..=plan.workers {
        let mut cmd = Command::new(&exe);
        match entry {
            Entry::Test(name) => {
                cmd.args(["--exact", name, "--nocapture", "--test-threads=1", "--quiet"]);
            }
            Entry::Main => {
                cmd.args(std::env::args_os().skip(1));
            }
        }
        // The secret goes through a pipe on the worker's stdin, read once
        // and closed: not in its environment, which every process a task
        // starts would inherit (and /proc shows to the user's processes).
        cmd.env(env::WORKER, w.to_string()).env(env::CONNECT, &cluster.address);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child: Child =
            cmd.spawn().map_err(|e| Error::Config(format!("could not start worker {w} ({}): {e}", exe.display())))?;
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write as _;
            let told = stdin.write_all(format!("{}\n", hex(secret)).as_bytes());
            if let Err(e) = told {
                let _ = child.kill();
                return Err(Error::Config(format!("could not give worker {w} the cluster secret: {e}")));
            }
        }
        if let Some(out) = child.stdout.take() {
            forward(w, out, false);
        }
        if let Some(err) = child.stderr.take() {
            forward(w, err, true);
        }
        cluster.children.lock().push((w as u32, child));
    }
    let joined = accept_workers(cluster, listener, plan, secret);
    let joined = match joined {
        Ok(j) => j,
        Err(e) => return Err(with_exits(cluster, e)),
    };
    let mut links = Vec::new();
    for (w, (stream, threads, pid)) in joined.into_iter().enumerate() {
        let worker = w as u32 + 1;
        let handler = Arc::new(move |frame| cluster.on_frame(worker, frame));
        let closed = Box::new(move |why| cluster.on_lost(worker, why));
        let outbox = socket::start_link(cluster.io.handle(), stream, cluster.cookie, handler, closed);
        let r = rings.remove(0);
        links.push(Link {
            threads,
            pid,
            outbox,
            ring_out: r.to_worker.map(crate::sync::Mutex::new),
            ring_in: r.to_main,
            alive: AtomicBool::new(true),
            heard: AtomicBool::new(true),
            load: Default::default(),
            frees: Default::default(),
        });
    }
    let _ = cluster.links.set(links.into_boxed_slice());
    for path in cluster.ring_files.lock().drain(..) {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// Prints what worker `w` prints, each line marked with its worker (as
/// Distributed.jl does). The test harness's own header in a worker started
/// from a test binary is left out.
fn forward(w: usize, from: impl Read + Send + 'static, to_stderr: bool) {
    let spawned = std::thread::Builder::new().name(format!("dirk-out-{w}")).spawn(move || {
        let mut started = false;
        for line in std::io::BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            if !started && (line.trim().is_empty() || line.starts_with("running ")) {
                continue;
            }
            started = true;
            if to_stderr {
                eprintln!("      From worker {w}:\t{line}");
            } else {
                println!("      From worker {w}:\t{line}");
            }
        }
    });
    drop(spawned);
}

/// Adds what became of workers that already exited to a launch error.
fn with_exits(cluster: &Cluster, e: Error) -> Error {
    let mut exits = Vec::new();
    for (w, child) in cluster.children.lock().iter_mut() {
        if let Ok(Some(status)) = child.try_wait() {
            exits.push(format!("worker {w} exited ({status})"));
        }
    }
    if exits.is_empty() { e } else { Error::Transport(format!("{e}; {}", exits.join(", "))) }
}

type Joined = Vec<(UnixStream, usize, u32)>;

fn accept_workers(
    cluster: &'static Cluster,
    listener: UnixListener,
    plan: &Launch,
    secret: &[u8; 32],
) -> Result<Joined, Error> {
    let (workers, threads, secret, cookie) = (plan.workers, plan.threads, *secret, cluster.cookie);
    let exited = move || {
        cluster.children.lock().iter_mut().find_map(|(w, c)| match c.try_wait() {
            Ok(Some(status)) => Some(format!("worker {w} exited before it joined ({status})")),
            _ => None,
        })
    };
    cluster.io.block_on(async move {
        let mut slots: Vec<Option<(UnixStream, usize, u32)>> = (0..workers).map(|_| None).collect();
        let deadline = tokio::time::Instant::now() + JOIN_TIMEOUT;
        // Each connection is handled by a task of its own (a silent one
        // cannot hold up the others), at most HANDSHAKES at once.
        let (joined_tx, mut joined) = tokio::sync::mpsc::unbounded_channel();
        let handshakes = Arc::new(tokio::sync::Semaphore::new(HANDSHAKES));
        let rings: Vec<(String, String)> =
            (1..=workers).map(|w| (ring_name(cluster, w, "down"), ring_name(cluster, w, "up"))).collect();
        let rings = Arc::new(rings);
        while slots.iter().any(Option::is_none) {
            tokio::select! {
                a = listener.accept() => {
                    let Ok((stream, _)) = a else { continue };
                    let Ok(permit) = handshakes.clone().try_acquire_owned() else {
                        continue; // too many at once: this one is closed
                    };
                    let (tx, rings) = (joined_tx.clone(), rings.clone());
                    tokio::spawn(async move {
                        let outcome = welcome(stream, secret, cookie, workers, threads, &rings).await;
                        drop(permit);
                        let _ = tx.send(outcome);
                    });
                }
                j = joined.recv() => match j {
                    Some(Ok(Some((w, stream, threads, pid)))) if slots[w - 1].is_none() => {
                        slots[w - 1] = Some((stream, threads, pid));
                    }
                    Some(Err(e)) => return Err(e),
                    _ => {}
                },
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(Error::Transport(format!("workers did not join within {JOIN_TIMEOUT:?}")));
                }
                _ = tokio::time::sleep(Duration::from_millis(50)) => {
                    if let Some(why) = exited() {
                        return Err(Error::Transport(why));
                    }
                }
            }
        }
        tokio::spawn(refuse_latecomers(listener, cookie));
        Ok(slots.into_iter().map(|s| s.expect("every slot is filled")).collect())
    })
}

/// Handshakes process 0 runs at once; a connection beyond them is closed.
const HANDSHAKES: usize = 64;

/// One joining worker: who it is, its stream, its threads and its pid.
pub(crate) type Joining = Option<(usize, UnixStream, usize, u32)>;

/// Process 0's side of a worker's handshake: challenge, check the proof,
/// welcome (with process 0's own proof), wait for `Ready`. `Ok(None)` for
/// a connection refused (it is closed); an error for a worker that proved
/// the secret and then failed to start.
pub(crate) async fn welcome(
    mut stream: UnixStream,
    secret: [u8; 32],
    cookie: u64,
    workers: usize,
    threads: usize,
    rings: &[(String, String)],
) -> Result<Joining, Error> {
    let Ok(challenge) = auth::random() else { return Ok(None) };
    let Ok(frame) = crate::transport::frame::encode(&Message::Challenge { nonce: challenge }, Blobs::default(), cookie)
    else {
        return Ok(None);
    };
    if write_frame(&mut stream, &frame).await.is_err() {
        return Ok(None);
    }
    let hello = tokio::time::timeout(Duration::from_secs(10), read_frame(&mut stream, cookie)).await;
    let Ok(Ok(hello)) = hello else { return Ok(None) };
    let Ok(Message::Hello { worker, pid, nonce, proof }) = hello.owned() else { return Ok(None) };
    let w = worker as usize;
    if !(1..=workers).contains(&w) || !auth::same(&proof, &auth::hello_proof(&secret, &challenge, &nonce, worker, 0)) {
        return Ok(None); // refused: the stream drops, closing the connection
    }
    let (down, up) = rings[w - 1].clone();
    let welcome = Message::Welcome {
        threads: threads as u32,
        workers: workers as u32,
        to_worker_ring: down,
        to_main_ring: up,
        proof: auth::welcome_proof(&secret, &challenge, &nonce),
    };
    let frame = crate::transport::frame::encode(&welcome, Blobs::default(), cookie)?;
    if write_frame(&mut stream, &frame).await.is_err() {
        return Ok(None);
    }
    let ready = tokio::time::timeout(Duration::from_secs(30), read_frame(&mut stream, cookie)).await;
    match ready.map(|r| r.and_then(|f| f.owned())) {
        Ok(Ok(Message::Ready { threads })) => Ok(Some((w, stream, threads as usize, pid))),
        Ok(Ok(_)) | Ok(Err(_)) => Err(Error::Transport(format!("worker {w} failed to start"))),
        Err(_) => Err(Error::Transport(format!("worker {w} did not become ready"))),
    }
}

fn ring_name(cluster: &Cluster, worker: usize, dir: &str) -> String {
    let suffix = format!("-w{worker}-{dir}");
    let files = cluster.ring_files.lock();
    files
        .iter()
        .find(|p| p.to_string_lossy().ends_with(&suffix))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// After the launch: every connection is refused (read its hello, close),
/// at most [`HANDSHAKES`] at once.
async fn refuse_latecomers(listener: UnixListener, cookie: u64) {
    let open = Arc::new(tokio::sync::Semaphore::new(HANDSHAKES));
    while let Ok((mut stream, _)) = listener.accept().await {
        let Ok(permit) = open.clone().try_acquire_owned() else { continue };
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(5), read_frame(&mut stream, cookie)).await;
            drop(permit);
        });
    }
}

/// Parses a worker id from its environment variable.
pub(crate) fn worker_id() -> Option<u32> {
    std::env::var(env::WORKER).ok()?.trim().parse().ok()
}

pub(crate) fn connect_path() -> Option<PathBuf> {
    std::env::var_os(env::CONNECT).map(PathBuf::from)
}
