use dirk::prelude::*;

#[task]
async fn fetch_page(url: String) -> usize {
    url.len()
}

fn main() {}
