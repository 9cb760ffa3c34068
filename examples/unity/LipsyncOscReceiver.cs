// Lip sync curves from the lipsync bridge, over OSC, onto a SkinnedMeshRenderer's blend shapes.
//
//   lipsync osc line.json --to 127.0.0.1:9000 --preset generic     (or: POST /osc/play)
//
// Add this component to the character, set `Face` to its SkinnedMeshRenderer and, where the
// blend shapes are not named like the channels (PP, FF, aa, ... for the oculus15 set), fill
// `Names` with "channel=BlendShapeName" lines. Unity has no OSC built in: this file reads the
// two OSC packet kinds the bridge sends (a bundle of messages with one float each, address
// /lipsync/<channel>) with a plain UdpClient, on a thread, and applies them on the main thread.
using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using UnityEngine;

public class LipsyncOscReceiver : MonoBehaviour
{
    public SkinnedMeshRenderer Face;
    public int Port = 9000;
    public string Prefix = "/lipsync/";
    [Tooltip("channel=BlendShapeName, one per line")]
    [TextArea] public string Names = "";
    [Tooltip("Unity blend shapes run 0..100")]
    public float Scale = 100f;

    readonly ConcurrentDictionary<string, float> latest = new ConcurrentDictionary<string, float>();
    readonly Dictionary<string, int> shapeIndex = new Dictionary<string, int>();
    UdpClient udp;
    Thread reader;
    volatile bool running;

    void OnEnable()
    {
        var rename = new Dictionary<string, string>();
        foreach (var line in Names.Split('\n'))
        {
            var pair = line.Split('=');
            if (pair.Length == 2) rename[pair[0].Trim()] = pair[1].Trim();
        }
        var mesh = Face.sharedMesh;
        for (int i = 0; i < mesh.blendShapeCount; i++)
            shapeIndex[mesh.GetBlendShapeName(i)] = i;
        foreach (var kv in rename)
            if (shapeIndex.TryGetValue(kv.Value, out var i)) shapeIndex[kv.Key] = i;

        udp = new UdpClient(new IPEndPoint(IPAddress.Loopback, Port));
        running = true;
        reader = new Thread(Read) { IsBackground = true };
        reader.Start();
    }

    void OnDisable()
    {
        running = false;
        udp?.Close();  // unblocks Receive
        reader?.Join(200);
    }

    void Update()
    {
        foreach (var kv in latest)
            if (shapeIndex.TryGetValue(kv.Key, out var i))
                Face.SetBlendShapeWeight(i, Mathf.Clamp01(kv.Value) * Scale);
    }

    void Read()
    {
        var from = new IPEndPoint(IPAddress.Any, 0);
        while (running)
        {
            try { Packet(udp.Receive(ref from), 0, -1); }
            catch (SocketException) { }      // closed on disable
            catch (ObjectDisposedException) { return; }
            catch (Exception e) { Debug.LogWarning($"lipsync OSC: bad packet ({e.Message})"); }
        }
    }

    // A packet is a bundle ("#bundle", 8-byte time tag, then size-prefixed elements) or a message.
    void Packet(byte[] data, int start, int end)
    {
        if (end < 0) end = data.Length;
        if (Text(data, start, out _) == "#bundle")
        {
            // The time tag says when the frame is due; the bridge already sends each bundle
            // just before its time, so it is applied on arrival.
            int at = start + 16;
            while (at + 4 <= end)
            {
                int size = Int(data, at);
                Packet(data, at + 4, at + 4 + size);
                at += 4 + size;
            }
            return;
        }
        string address = Text(data, start, out int next);
        string types = Text(data, next, out int args);
        if (types == ",f" && address.StartsWith(Prefix))
            latest[address.Substring(Prefix.Length)] = Float(data, args);
    }

    static string Text(byte[] d, int at, out int next)
    {
        int end = Array.IndexOf(d, (byte)0, at);
        if (end < 0) end = d.Length;
        next = at + ((end - at) / 4 + 1) * 4;  // OSC strings are padded to 4 bytes
        return Encoding.ASCII.GetString(d, at, end - at);
    }

    static int Int(byte[] d, int at) => (d[at] << 24) | (d[at + 1] << 16) | (d[at + 2] << 8) | d[at + 3];

    static float Float(byte[] d, int at) => BitConverter.Int32BitsToSingle(Int(d, at));
}
