# tutti trio, part 3 of 3: chords. Run it in your Sonic Pi (started with
# sonic-pi-tutti). Change HUB to where the hub runs, and your name.
HUB = "127.0.0.1:7770"   # where `tutti hub` runs: "host:port"
use_bpm 120
tutti_join "trio", hub: HUB, as: "chords"
tutti_sync 2

live_loop :chords do
  with_fx :reverb, room: 0.7 do
    use_synth :prophet
    play chord(:e3, :minor7), release: 3.5, amp: 0.4
    sleep 4
    play chord(:g3, :major7), release: 3.5, amp: 0.4
    sleep 4
  end
end
