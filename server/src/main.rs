fn main() {
    print!("{}", custos_server::USAGE);
}
