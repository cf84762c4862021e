//! Integration tests of the api against real services: Postgres, nats-server with JetStream.
//! One binary (link once); each test gets its own database and nats-server.

mod admin;
mod appeals;
mod backup;
mod browser;
mod docs;
mod faults;
mod hearing;
mod helpers;
mod pages;
mod phones;
mod platforms;
mod projection;
mod relay;
mod replay;
mod reports;
mod republish;
mod slow_clients;
mod stages;
mod tasks;
mod vault;
mod workers;
