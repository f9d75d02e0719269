fn main() {
    print!("{}", custos_daemon::USAGE);
}
