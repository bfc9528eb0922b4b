//! The integration tests, one binary: each module is a part of rota tried from outside (over
//! real sockets, files and processes where the behaviour lives there). One binary links once
//! after an edit instead of twenty times.

mod common;

mod api;
mod calendar;
mod cli;
mod client;
mod console;
mod crash;
mod diagnostics;
mod docs;
mod editor;
mod engine;
mod host_functions;
mod layout;
mod logs;
mod partitions;
mod postgres;
mod property;
mod quiet;
mod readme;
mod reload;
mod roster;
mod sandbox;
mod scenarios;
mod server;
mod standby;
mod steady;
mod test_command;
mod tutorial;
mod webhook;
mod workflows;
