# tutti trio, part 2 of 3: bass. Run it in your Sonic Pi (started with
# sonic-pi-tutti). Change HUB to where the hub runs, and your name.
HUB = "127.0.0.1:7770"   # where `tutti hub` runs: "host:port"
use_bpm 120
tutti_join "trio", hub: HUB, as: "bass"
tutti_sync 2

live_loop :bass do
  with_fx :lpf, cutoff: 90 do
    use_synth :fm
    [:e2, :e2, :g2, :a2].each do |n|
      play n, release: 0.8, amp: 0.8
      sleep 1
    end
  end
end

live_loop :slap do
  sleep 2
  sample :elec_blip, amp: 0.5
  sleep 2
end
