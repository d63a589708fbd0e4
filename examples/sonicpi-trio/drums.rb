# tutti trio, part 1 of 3: drums. Run it in your Sonic Pi (started with
# sonic-pi-tutti). Change HUB to where the hub runs, and your name.
HUB = "127.0.0.1:7770"   # where `tutti hub` runs: "host:port"
use_bpm 120
tutti_join "trio", hub: HUB, as: "drums"
tutti_sync 2    # start on a 2-bar line of the session, with the others

live_loop :kick do
  sample :bd_haus, amp: 1.5
  sleep 1
end

live_loop :hats do
  with_fx :hpf, cutoff: 100 do
    8.times do
      sample :drum_cymbal_closed, amp: 0.6, rate: 1.2
      sleep 0.5
    end
  end
end
