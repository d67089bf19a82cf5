//! Postgres through a real gateway process, against throwaway Postgres servers.

use mover_tests::Postgres;

#[test]
fn a_throwaway_server_starts_and_answers() {
    let pg = Postgres::start();
    assert_eq!(pg.psql("SELECT 40 + 2"), "42");
}
