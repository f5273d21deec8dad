//! `--on-demand`: boot on the first connection, scale to zero. The runner
//! listens on the TCP forwards' host ports itself, with no guest running.
//! A connection boots the guest and is held (accepted, not yet read) until
//! the guest listens behind that forward (`Qemu::on_ready`); then it and
//! every later connection are spliced to the guest: with user networking
//! through a private loopback port QEMU forwards, on a `--tap` to the
//! address the guest's listening line gives. After `--idle-exit` with no connection, the runner stops
//! the guest with SIGTERM, as it passes on a Ctrl-C: QEMU shuts down and
//! closes its disk image, flushed. The next connection boots it again.
//! With `--warm` the next guest's QEMU is started at once, paused (before
//! its first instruction, or with its `--snapshot` loaded): a connection
//! then only lets it run, and each QEMU still serves one guest's life.
//!
//! Threads and std only: an acceptor per forward; two threads per spliced
//! connection (one per direction); and for each guest a watcher (readiness,
//! deadlines, idleness, stop signals), while the main thread runs QEMU, as
//! `signals::die_with_runner` requires.

use crate::image::Image;
use crate::options::Options;
use crate::qemu::{self, Chosen, Outcome};
use crate::signals::{self, Stops};
use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddrV4, TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use unikernel_core::forward::{Forward, HOST_ADDRESS, Protocol, Reachable};
use unikernel_core::vmm::{Kind, virtio};

/// How long a guest may take to listen, and a connection may be held.
pub const BOOT_DEADLINE: Duration = Duration::from_secs(30);
/// Connections held or spliced at once; beyond it new ones are closed at
/// once (each spliced one costs two threads).
const MAX_CONNECTIONS: usize = 512;
/// How often the watcher looks at the clocks and the stop signals.
const TICK: Duration = Duration::from_millis(20);
/// A splicing thread only copies through a buffer of its own.
const SPLICE_STACK: usize = 64 << 10;

/// The `--on-demand` options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Stop the guest after this long without a connection (`--idle-exit`).
    pub idle_exit: Option<Duration>,
    /// `--boot-deadline`, [`BOOT_DEADLINE`] by default.
    pub boot_deadline: Duration,
    /// `--warm`: keep the next guest's QEMU started and paused.
    pub warm: bool,
}

impl Settings {
    /// The settings when `on`; the other options only make sense with it.
    pub fn of(
        on: bool,
        idle_exit: Option<Duration>,
        boot_deadline: Option<Duration>,
        warm: bool,
    ) -> Result<Option<Self>, String> {
        match on {
            true => Ok(Some(Self { idle_exit, boot_deadline: boot_deadline.unwrap_or(BOOT_DEADLINE), warm })),
            false if idle_exit.is_none() && boot_deadline.is_none() && !warm => Ok(None),
            false => Err("--idle-exit, --boot-deadline and --warm work only with --on-demand".into()),
        }
    }
}

/// A guest's life as connections see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// No QEMU: a held connection starts one.
    Down,
    /// QEMU runs; the forwards in `State::open` listen.
    Running,
    /// The runner is stopping it: new connections wait for the next boot.
    Stopping,
}

/// A connection accepted on host port `port`, waiting for the guest.
struct Held {
    stream: TcpStream,
    port: u16,
    since: Instant,
}

struct State {
    phase: Phase,
    /// Host port → where the running guest answers behind it.
    open: HashMap<u16, SocketAddrV4>,
    held: Vec<Held>,
    /// Connections being spliced to the guest.
    spliced: usize,
    /// Since when nothing was held or spliced: the idle clock.
    quiet_since: Instant,
    /// Whether the cap's line was printed since the last connection taken.
    capped: bool,
}

struct Shared {
    state: Mutex<State>,
    /// A connection came or went, or the phase changed.
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent across a panicking splice thread.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Why the runner stopped a guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    Idle,
    Deadline,
    Signal(i32),
}

/// Serves the image's TCP forwards on demand until a stop signal; returns
/// the runner's exit status (128 + N for signal N).
pub fn serve(opts: &Options, settings: &Settings, image: &Image, accel: Chosen, stops: &Stops) -> Result<u8, String> {
    let forwards = qemu::forwards(opts, &image.records);
    refuse(opts, settings, image, &forwards)?;
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            phase: Phase::Down,
            open: HashMap::new(),
            held: Vec::new(),
            spliced: 0,
            quiet_since: Instant::now(),
            capped: false,
        }),
        changed: Condvar::new(),
    });
    for forward in &forwards {
        let listener = TcpListener::bind(forward.host_address())
            .map_err(|e| format!("--on-demand: cannot listen on {}: {e}", forward.host_address()))?;
        let (shared, port) = (shared.clone(), forward.host);
        std::thread::Builder::new()
            .name(format!("accept {port}"))
            .spawn(move || accept(&listener, port, &shared))
            .map_err(|e| format!("--on-demand: cannot start a thread: {e}"))?;
        let reachable = Reachable { protocol: Protocol::Tcp, at: forward.host_address(), port: forward.guest };
        eprintln!("unikernel-runner: on demand: listening on {reachable}; a connection starts the guest");
    }
    let mut warm = settings.warm;
    for boot in 1.. {
        if !warm && let Wait::Signal(signal) = wait_for_demand(&shared, stops, || false) {
            eprintln!("unikernel-runner: stopped by signal {}", signals::describe(signal));
            return Ok(signals::status(signal));
        }
        let (signal, demanded) = life(opts, settings, image, accel, stops, &shared, &forwards, (boot, warm));
        if let Some(signal) = signal {
            return Ok(signals::status(signal));
        }
        // A QEMU that ended before any connection would end again: the
        // next one waits for a connection to start.
        warm = settings.warm && demanded;
    }
    unreachable!("a u64 of boots")
}

/// What `--on-demand` cannot do, before it listens.
fn refuse(opts: &Options, settings: &Settings, image: &Image, forwards: &[Forward]) -> Result<(), String> {
    if opts.gdb.is_some() || opts.profile.is_some() {
        return Err("--on-demand starts a guest per burst of connections: drop --gdb and --profile".into());
    }
    if !image.records.iter().any(|r| r.kind == Kind::Virtio && r.device == virtio::NET) {
        return Err(format!("--on-demand: {} has no network device to wake it", opts.image.display()));
    }
    if forwards.is_empty() {
        return Err("--on-demand needs a TCP forward (--forward HOST:GUEST)".into());
    }
    if settings.warm && opts.tap.is_some() {
        return Err(
            "--warm lets the paused guest run through QEMU's monitor: it needs user networking (no --tap)".into()
        );
    }
    match forwards.iter().find(|f| f.protocol == Protocol::Udp) {
        Some(udp) => Err(format!("--on-demand forwards TCP only: drop udp:{}:{}", udp.host, udp.guest)),
        None => Ok(()),
    }
}

/// Takes the connections to host port `port`: spliced at once while the
/// guest listens behind it, held otherwise, closed beyond the cap.
fn accept(listener: &TcpListener, port: u16, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                // Out of descriptors, most likely: let some connections end.
                eprintln!("unikernel-runner: on demand: accepting on port {port}: {e}");
                std::thread::sleep(TICK);
                continue;
            }
        };
        let mut state = shared.lock();
        if state.held.len() + state.spliced >= MAX_CONNECTIONS {
            if !std::mem::replace(&mut state.capped, true) {
                eprintln!("unikernel-runner: on demand: {MAX_CONNECTIONS} connections open: closing new ones");
            }
            continue;
        }
        state.capped = false;
        match state.open.get(&port) {
            Some(&guest) if state.phase == Phase::Running => splice(shared, &mut state, stream, guest),
            _ => {
                state.held.push(Held { stream, port, since: Instant::now() });
                shared.changed.notify_all();
            }
        }
    }
}

/// Copies `client` to and from the `guest` address on threads of its own,
/// counted in `state.spliced` until both directions end.
fn splice(shared: &Arc<Shared>, state: &mut State, client: TcpStream, guest: SocketAddrV4) {
    state.spliced += 1;
    let shared_ = shared.clone();
    let spawned = std::thread::Builder::new().stack_size(SPLICE_STACK).spawn(move || {
        if let Err(e) = pump(client, guest) {
            eprintln!("unikernel-runner: on demand: a connection to the guest failed: {e}");
        }
        let mut state = shared_.lock();
        state.spliced -= 1;
        if state.spliced == 0 && state.held.is_empty() {
            state.quiet_since = Instant::now();
        }
        shared_.changed.notify_all();
    });
    if let Err(e) = spawned {
        eprintln!("unikernel-runner: on demand: cannot start a thread for a connection: {e}");
        state.spliced -= 1;
    }
}

/// Both directions between `client` and the guest. The client's end
/// closes when the guest's does (the guest is done with it, or gone).
fn pump(client: TcpStream, guest: SocketAddrV4) -> io::Result<()> {
    let guest = TcpStream::connect(guest)?;
    // Requests and replies are small and interactive.
    guest.set_nodelay(true)?;
    client.set_nodelay(true)?;
    let (mut from_client, mut to_guest) = (client.try_clone()?, guest.try_clone()?);
    let upstream = std::thread::Builder::new().stack_size(SPLICE_STACK).spawn(move || {
        let _ = io::copy(&mut from_client, &mut to_guest);
        let _ = to_guest.shutdown(Shutdown::Write);
    })?;
    let (mut from_guest, mut to_client) = (guest, client);
    let _ = io::copy(&mut from_guest, &mut to_client);
    // Also ends `upstream`'s read, so a client that never closes cannot
    // keep a guest that closed its side awake.
    let _ = to_client.shutdown(Shutdown::Both);
    let _ = upstream.join();
    Ok(())
}

/// How waiting for a connection ended.
enum Wait {
    Demand,
    Signal(i32),
    /// The paused QEMU ended first.
    Ended,
}

/// Waits until a connection is held, a stop signal comes, or `ended`.
fn wait_for_demand(shared: &Shared, stops: &Stops, ended: impl Fn() -> bool) -> Wait {
    let mut state = shared.lock();
    loop {
        if let Some(signal) = stops.take() {
            return Wait::Signal(signal);
        }
        if !state.held.is_empty() {
            return Wait::Demand;
        }
        if ended() {
            return Wait::Ended;
        }
        state = shared.changed.wait_timeout(state, TICK).unwrap_or_else(|e| e.into_inner()).0;
    }
}

/// The guest starts running for the connections held.
fn start(state: &mut State, boot: u64) {
    state.phase = Phase::Running;
    eprintln!("unikernel-runner: on demand: starting the guest (boot {boot}, {} connection(s) held)", state.held.len());
}

/// One guest's life, from boot `boot` to its end, its QEMU started paused
/// when `warm`; returns the stop signal that ends the runner, if one came,
/// and whether a connection let the guest run.
#[allow(clippy::too_many_arguments, reason = "the run's whole context, passed down once")]
fn life(
    opts: &Options,
    settings: &Settings,
    image: &Image,
    accel: Chosen,
    stops: &Stops,
    shared: &Arc<Shared>,
    forwards: &[Forward],
    (boot, warm): (u64, bool),
) -> (Option<i32>, bool) {
    match warm {
        true => eprintln!("unikernel-runner: on demand: starting QEMU paused (boot {boot})"),
        false => start(&mut shared.lock(), boot),
    }
    // A tap reaches the guest's own address: no private forward.
    let private = |f: Forward| -> Result<Forward, String> {
        match opts.tap {
            Some(_) => Ok(f),
            None => Ok(Forward { host: free_port()?, ..f }),
        }
    };
    let pairs: Result<Vec<_>, String> = forwards.iter().map(|&f| Ok((f, private(f)?))).collect();
    let (outcome, (stop, demanded)) = match pairs {
        Err(e) => (Err(e), (None, !warm)),
        Ok(pairs) => {
            let (ready, readiness) = mpsc::channel();
            let (gate, opened) = mpsc::channel();
            let gate = warm.then_some(gate);
            let guest_stops = Stops::requested();
            let mut own = opts.clone();
            own.forwards = pairs.iter().map(|&(_, private)| private).collect();
            std::thread::scope(|scope| {
                let watcher = scope.spawn(|| {
                    let guest = Guest { readiness, stops: &guest_stops, pairs: &pairs, gate, boot };
                    watch(&guest, settings, stops, shared)
                });
                let outcome = qemu::command(&own, image, accel).and_then(|mut qemu| {
                    crate::banner(&own, image, accel);
                    // `refuse` made sure the run opens forwards, and that
                    // a warm one has user networking.
                    qemu.on_ready(ready);
                    if warm {
                        qemu.paused_until(opened);
                    }
                    qemu::run(qemu, image, own.timeout, &guest_stops)
                });
                // QEMU's end dropped `ready`, which ends the watcher.
                (outcome, watcher.join().unwrap_or((None, true)))
            })
        }
    };
    let mut state = shared.lock();
    state.phase = Phase::Down;
    state.open.clear();
    let why = match (&outcome, stop) {
        (_, Some(Stop::Signal(signal))) => return (Some(signal), demanded),
        (_, Some(Stop::Idle)) => {
            // Connections that came while it stopped start the next boot.
            eprintln!("unikernel-runner: on demand: the guest stopped; the next connection starts it again");
            return (None, demanded);
        }
        (_, Some(Stop::Deadline)) => "it did not listen in time".to_string(),
        (Ok(Outcome::Exit(status)), None) => format!("the guest exited with status {status}"),
        (Ok(Outcome::QemuFailed { reason, .. }) | Err(reason), None) => reason.clone(),
    };
    eprintln!(
        "unikernel-runner: on demand: boot {boot} ended ({why}); closing {} held connection(s); the next connection starts the guest again",
        state.held.len()
    );
    state.held.clear();
    (None, demanded)
}

/// A running guest, as its watcher sees it.
struct Guest<'a> {
    /// Each forward as it opens (`Qemu::on_ready`); disconnects at QEMU's end.
    readiness: Receiver<qemu::Ready>,
    /// How the runner stops it.
    stops: &'a Stops,
    /// The forwards: the user's, and the private one QEMU opens for it.
    pairs: &'a [(Forward, Forward)],
    /// `--warm`: lets the paused guest run once a connection is held.
    gate: Option<Sender<()>>,
    boot: u64,
}

/// A loopback port free now, for a forward's private side. Another process
/// may take it before QEMU does: that boot then fails, and the next tries
/// another.
fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind((HOST_ADDRESS, 0)).map_err(|e| format!("no free loopback port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// Watches a running guest until QEMU ends: hands the held connections to
/// each forward that opens, closes connections held too long, and stops the
/// guest on a stop signal, at the boot deadline or when idle. Returns why
/// it stopped the guest, and whether a connection let it run.
fn watch(guest: &Guest, settings: &Settings, stops: &Stops, shared: &Arc<Shared>) -> (Option<Stop>, bool) {
    let boot = guest.boot;
    if let Some(gate) = &guest.gate {
        let ended = || matches!(guest.readiness.try_recv(), Err(TryRecvError::Disconnected));
        match wait_for_demand(shared, stops, ended) {
            Wait::Demand => {
                start(&mut shared.lock(), boot);
                // Gone only when QEMU ended, which the loop below sees.
                let _ = gate.send(());
            }
            Wait::Signal(signal) => {
                guest.stops.request(signal);
                return (Some(Stop::Signal(signal)), false);
            }
            Wait::Ended => return (None, false),
        }
    }
    // The boot deadline counts from the connection that let the guest run.
    let started = Instant::now();
    let mut stop = None;
    loop {
        let opened = match guest.readiness.recv_timeout(TICK) {
            Ok((private, at)) => guest.pairs.iter().find(|(_, p)| *p == private).map(|&(public, _)| (public, at)),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return (stop, true),
        };
        let mut state = shared.lock();
        if let Some((public, at)) = opened {
            if state.open.is_empty() {
                state.quiet_since = Instant::now();
            }
            state.open.insert(public.host, at);
            let (waiting, others): (Vec<Held>, _) =
                std::mem::take(&mut state.held).into_iter().partition(|h| h.port == public.host);
            state.held = others;
            eprintln!(
                "unikernel-runner: on demand: the guest listens behind port {} after {} ms (boot {boot}); passing it {} held connection(s)",
                public.host,
                started.elapsed().as_millis(),
                waiting.len()
            );
            for held in waiting {
                splice(shared, &mut state, held.stream, at);
            }
        }
        if stop.is_some() {
            continue;
        }
        if let Some(signal) = stops.take() {
            stop = Some(Stop::Signal(signal));
        } else if state.open.is_empty() && started.elapsed() >= settings.boot_deadline {
            eprintln!(
                "unikernel-runner: on demand: the guest did not listen within {:?}: stopping it (boot {boot})",
                settings.boot_deadline
            );
            stop = Some(Stop::Deadline);
        } else if let Some(idle) = settings.idle_exit
            && !state.open.is_empty()
            && state.held.is_empty()
            && state.spliced == 0
            && state.quiet_since.elapsed() >= idle
        {
            eprintln!("unikernel-runner: on demand: no connection for {idle:?}: stopping the guest (boot {boot})");
            stop = Some(Stop::Idle);
        }
        expire(&mut state, settings.boot_deadline);
        if let Some(why) = stop {
            state.phase = Phase::Stopping;
            guest.stops.request(match why {
                Stop::Signal(signal) => signal,
                Stop::Idle | Stop::Deadline => libc::SIGTERM,
            });
        }
    }
}

/// Closes the connections held longer than `deadline` (for a port the
/// running guest does not listen on, or a boot that is slow).
fn expire(state: &mut State, deadline: Duration) {
    let before = state.held.len();
    state.held.retain(|h| h.since.elapsed() < deadline);
    let closed = before - state.held.len();
    if closed > 0 {
        eprintln!("unikernel-runner: on demand: closed {closed} connection(s) held longer than {deadline:?}");
    }
}
