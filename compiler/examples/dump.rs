fn main() {
    let p = std::env::args().nth(1).unwrap();
    let c = compiler::compile_file(std::path::Path::new(&p)).unwrap();
    for d in &c.diagnostics { println!("{d}"); }
    println!("plan: {}", c.plan.is_some());
}
