//! Prints the history of one refused transfer as a mermaid sequence
//! diagram (paste it into any mermaid viewer, or an mdBook page).

#[tokio::main]
async fn main() -> Result<(), listing_23_02::Error> {
    // ANCHOR: main
    let history = listing_23_02::refused_transfer().await?;
    print!("{}", history.to_mermaid());
    // ANCHOR_END: main
    Ok(())
}
